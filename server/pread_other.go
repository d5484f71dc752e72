//go:build !unix

package server

import "errors"

// errNoPread is returned where a file cannot be read by descriptor number.
var errNoPread = errors.New("server: reading a file by descriptor needs a unix system")

// pread reports that the file pump is unavailable on this system.
func pread(fd int, b []byte, off int64) (int, error) { return 0, errNoPread }
