package static

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// symlinkPolicy is the parsed Options.FollowSymlinks.
type symlinkPolicy uint8

const (
	followInsideRoot symlinkPolicy = iota
	followAlways
	followNever
)

// Errors of path resolution. Any other error is an unexpected system error (answered
// 500), wrapped with os.NewSyscallError where it comes from a raw system call.
var (
	// errNotFound covers a missing file, a non-directory used as a directory, a path
	// refused by the symlink policy and a file that is neither regular nor a directory.
	errNotFound = errors.New("static: not found")
	// errForbidden is a file the server may not read (EACCES, EPERM).
	errForbidden = errors.New("static: permission denied")
	// errIsDir is returned by the cache for a path that names a directory.
	errIsDir = errors.New("static: is a directory")
)

// open opens rel beneath the root as the resolver does. When the process (EMFILE) or
// the system (ENFILE) is out of descriptors, the open-file cache first closes the
// least recently used half of those it holds and the open is tried once more: without
// it, a cache full of descriptors turned every file not cached yet into a 500.
func (h *Handler) open(rel string) (*os.File, os.FileInfo, error) {
	f, fi, err := h.res.open(rel)
	if err != nil && outOfDescriptors(err) && h.cache.shed() > 0 {
		f, fi, err = h.res.open(rel)
	}
	return f, fi, err
}

// outOfDescriptors reports whether err says that no descriptor was left.
func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// fileMeta is what a directory listing shows about one entry.
type fileMeta struct {
	mode  fs.FileMode // type bits only
	size  int64
	mtime int64 // nanoseconds since the Unix epoch
}

// openPortable opens rel beneath root with path-based checks, for systems without
// openat2. It refuses what the policy refuses, and anything neither regular nor a
// directory before opening it (so a FIFO cannot block the loop). Between the checks and
// the open a concurrent rename of a directory into a symbolic link could still redirect
// the open; the checks are therefore repeated after opening and the opened file must be
// the one the checks found. A race that swaps a link in and back out between the two
// checks is not detected: on such systems, do not let untrusted users write inside root.
func (r *resolver) openPortable(rel string) (*os.File, os.FileInfo, error) {
	full := r.root
	if rel != "" {
		full = filepath.Join(r.root, filepath.FromSlash(rel))
	}
	target, err := r.checkPortable(full, rel)
	if err != nil {
		return nil, nil, err
	}
	pre, err := os.Stat(target)
	if err != nil {
		return nil, nil, mapOpenError(err)
	}
	if !pre.Mode().IsRegular() && !pre.IsDir() {
		return nil, nil, errNotFound
	}
	f, err := os.Open(target)
	if err != nil {
		return nil, nil, mapOpenError(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !os.SameFile(pre, fi) {
		f.Close()
		return nil, nil, errNotFound
	}
	if r.policy != followAlways {
		again, err := r.checkPortable(full, rel)
		if err == nil {
			var post os.FileInfo
			if post, err = os.Stat(again); err == nil && !os.SameFile(post, fi) {
				err = errNotFound
			}
		}
		if err != nil {
			f.Close()
			return nil, nil, errNotFound
		}
	}
	return f, fi, nil
}

// checkPortable returns the path to open for full under the policy.
func (r *resolver) checkPortable(full, rel string) (string, error) {
	switch r.policy {
	case followAlways:
		return full, nil
	case followNever:
		p := r.root
		for seg := range strings.SplitSeq(rel, "/") {
			if seg == "" {
				continue
			}
			p = filepath.Join(p, seg)
			fi, err := os.Lstat(p)
			if err != nil {
				return "", mapOpenError(err)
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				return "", errNotFound
			}
		}
		return full, nil
	}
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", mapEvalError(err)
	}
	if !within(r.root, real) {
		return "", errNotFound
	}
	return real, nil
}

// within reports whether p is root or lies beneath it; both are clean absolute paths.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	if err != nil || filepath.IsAbs(rel) {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// mapEvalError maps an EvalSymlinks error: every failure to resolve (including its
// own "too many links", which is no errno) is errNotFound, except a permission error.
func mapEvalError(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return errForbidden
	}
	return errNotFound
}

// mapOpenError turns an open or stat error into errNotFound, errForbidden or itself.
// ENXIO and ENODEV come from opening a socket file or a device without a driver (or
// /dev/tty without a terminal): not a file that can be served, so errNotFound, as for
// a FIFO.
func mapOpenError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR),
		errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.ENAMETOOLONG),
		errors.Is(err, syscall.EXDEV), errors.Is(err, syscall.ENXIO),
		errors.Is(err, syscall.ENODEV):
		return errNotFound
	case errors.Is(err, fs.ErrPermission):
		return errForbidden
	}
	return err
}
