//go:build !linux

package app

// checkBindable reports nothing outside Linux: the listen that follows reports
// its own failure.
func checkBindable(string) error { return nil }
