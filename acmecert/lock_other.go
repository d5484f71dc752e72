//go:build !linux

package acmecert

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// tryLock takes the storage directory's lock without waiting. Without flock(2)
// the lock is a file created exclusively and removed by unlock; a process that
// dies while ordering leaves it, and it must then be removed by hand.
func (s *store) tryLock() (unlock func(), ok bool, err error) {
	path := filepath.Join(s.dir, "lock.excl")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	f.Close()
	return func() { os.Remove(path) }, true, nil
}
