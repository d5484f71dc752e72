package supervisor

import (
	"os"

	"golang.org/x/sys/unix"
)

// anonFile returns a new file with no name, for text handed to a worker: a
// memfd, which needs no writable directory, else an unlinked temporary file.
func anonFile(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err == nil {
		return os.NewFile(uintptr(fd), name), nil
	}
	return unlinkedTemp(name)
}
