//go:build !linux || galenet

package engine

// peerKept reports true: the portable engine asks net.Conn, which keeps the address.
func peerKept(*Conn) bool { return true }
