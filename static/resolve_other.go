//go:build !linux

package static

import (
	"os"
	"path/filepath"
)

// resolver opens paths beneath the root directory under a symlink policy. Without
// openat2 it relies on the path checks of openPortable; see there for the residual race.
type resolver struct {
	root   string        // absolute, symlink-free; immutable
	policy symlinkPolicy // immutable
}

func openResolver(root string, policy symlinkPolicy) (resolver, error) {
	return resolver{root: root, policy: policy}, nil
}

func (r *resolver) close() error { return nil }

// open opens rel ("" for the root itself) and returns it with its stat information.
// Only regular files and directories are returned; errors are errNotFound,
// errForbidden or a system error.
func (r *resolver) open(rel string) (*os.File, os.FileInfo, error) {
	return r.openPortable(rel)
}

// lstatAt describes name inside the directory dirPath without following a final
// symbolic link.
func lstatAt(_ *os.File, dirPath, name string) (fileMeta, error) {
	fi, err := os.Lstat(filepath.Join(dirPath, name))
	if err != nil {
		return fileMeta{}, err
	}
	return fileMeta{mode: fi.Mode().Type(), size: fi.Size(), mtime: fi.ModTime().UnixNano()}, nil
}
