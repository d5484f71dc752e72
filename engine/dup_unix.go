//go:build unix && (!linux || galenet)

package engine

import (
	"os"
	"syscall"
)

// dupFile returns an *os.File on a close-on-exec duplicate of fd, so that the engine
// can read and close it without touching the caller's descriptor.
func dupFile(fd int) (*os.File, error) {
	syscall.ForkLock.RLock() // no exec may inherit the duplicate before CloseOnExec
	d, err := syscall.Dup(fd)
	if err == nil {
		syscall.CloseOnExec(d)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	return os.NewFile(uintptr(d), "sendfile"), nil
}
