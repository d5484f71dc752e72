//go:build !linux

package main

import "os"

// isTerminal reports whether f is a character device, the portable
// approximation of a terminal check.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
