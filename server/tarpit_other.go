//go:build !linux || galenet

package server

// shrinkReceive does nothing where the connection's socket is not the loop's
// own (the portable engine): the tarpit then holds the socket with the buffer
// it has.
func shrinkReceive(int) bool { return false }
