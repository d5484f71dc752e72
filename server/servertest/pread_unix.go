//go:build unix

package servertest

import (
	"os"
	"syscall"
)

// preadAll reads n bytes of fd from off with pread(2).
func preadAll(fd int, off, n int64) ([]byte, error) {
	b := make([]byte, n)
	got := 0
	for got < len(b) {
		m, err := syscall.Pread(fd, b[got:], off+int64(got))
		if err != nil {
			return b[:got], os.NewSyscallError("pread", err)
		}
		if m == 0 {
			break
		}
		got += m
	}
	return b[:got], nil
}
