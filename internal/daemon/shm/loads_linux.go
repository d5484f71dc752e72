package shm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// MapShared maps the file at path, size bytes, MAP_SHARED for reading and
// writing, creating it zero-filled when it does not exist. Processes that map
// the same path at once all see one zero-filled file of that size: extending a
// file to a size it already has changes nothing. A file of another size is an
// error (another layout). The mapping lives until Unmap.
func MapShared(path string, size int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch fi.Size() {
	case 0:
		if err := f.Truncate(int64(size)); err != nil {
			return nil, err
		}
	case int64(size):
	default:
		return nil, fmt.Errorf("%s: %d bytes, expected %d: %w", path, fi.Size(), size, ErrFormat)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return mem, nil
}

// Unmap releases a mapping MapShared returned.
func Unmap(mem []byte) error { return os.NewSyscallError("munmap", unix.Munmap(mem)) }
