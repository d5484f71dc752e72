//go:build unix

package nethttp

import (
	"os"

	"golang.org/x/sys/unix"
)

// dupFile returns a new *os.File on a duplicate of f's descriptor, close-on-exec
// from the start (a binary upgrade's child must not inherit it).
func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd int
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", derr)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
