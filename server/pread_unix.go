//go:build unix

package server

import (
	"os"
	"syscall"
)

// pread reads from fd at off with pread(2), retrying on EINTR.
func pread(fd int, b []byte, off int64) (int, error) {
	for {
		n, err := syscall.Pread(fd, b, off)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("pread", err)
		}
		return n, nil
	}
}
