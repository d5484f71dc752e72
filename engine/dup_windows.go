package engine

import (
	"os"
	"syscall"
)

// dupFile returns an *os.File on a duplicate of the file handle fd (as static and
// server pass it: the value of (*os.File).Fd), so that the engine can read and close
// it without touching the caller's handle. The duplicate is not inheritable.
func dupFile(fd int) (*os.File, error) {
	p, err := syscall.GetCurrentProcess()
	if err != nil {
		return nil, os.NewSyscallError("GetCurrentProcess", err)
	}
	var h syscall.Handle
	if err := syscall.DuplicateHandle(p, syscall.Handle(fd), p, &h, 0, false, syscall.DUPLICATE_SAME_ACCESS); err != nil {
		return nil, os.NewSyscallError("DuplicateHandle", err)
	}
	return os.NewFile(uintptr(h), "sendfile"), nil
}
