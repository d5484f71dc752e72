package acmecert

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// tryLock takes the storage directory's lock without waiting: flock(2) on the
// lock file, held by this process until unlock (or its exit). ok is false when
// another process (or another Manager of this one) holds it.
func (s *store) tryLock() (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, false, nil
		}
		return nil, false, os.NewSyscallError("flock", err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, true, nil
}
