package static

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// resolver opens paths beneath the root directory under a symlink policy. On Linux it
// uses openat2(2) anchored at an O_PATH descriptor of the root, so the kernel itself
// refuses any resolution that leaves the root (RESOLVE_BENEATH); on kernels before 5.6
// (ENOSYS) it falls back to openPortable for the rest of the process.
//
// The root descriptor is held by an *os.File, whose cleanup closes it when the
// resolver becomes unreachable: a configuration reload drops the handlers it
// replaces without closing them (a request may still be running on one), and a bare
// descriptor leaked one per static route and reload. Every use of rootFD is followed
// by runtime.KeepAlive(r.rootFile), so the descriptor cannot be closed, and its number
// reused, while a system call resolves against it.
type resolver struct {
	root      string        // absolute, symlink-free; immutable
	rootFile  *os.File      // owns rootFD; immutable until close
	rootFD    int           // O_PATH descriptor of root; immutable until close
	policy    symlinkPolicy // immutable
	noOpenat2 atomic.Bool   // set once, by any loop, when openat2 reports ENOSYS
}

func openResolver(root string, policy symlinkPolicy) (resolver, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return resolver{}, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	return resolver{root: root, rootFile: os.NewFile(uintptr(fd), root), rootFD: fd, policy: policy}, nil
}

func (r *resolver) close() error {
	return r.rootFile.Close()
}

// open opens rel ("" for the root itself) and returns it with its fstat information.
// Only regular files and directories are returned; errors are errNotFound,
// errForbidden or a wrapped system error.
//
// Under followInsideRoot, RESOLVE_BENEATH makes the kernel follow relative symbolic
// links that stay inside the root and fail with EXDEV on an absolute link or an
// escape. An absolute link may still point back inside the root (a deployment
// symlinked with its full path), so on EXDEV the path is resolved by name and, when
// the target lies beneath the root, its symlink-free form is opened again with
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, which fails if anything was swapped meanwhile.
func (r *resolver) open(rel string) (*os.File, os.FileInfo, error) {
	if r.noOpenat2.Load() {
		return r.openPortable(rel)
	}
	name := rel
	if name == "" {
		name = "."
	}
	var resolve uint64
	switch r.policy {
	case followInsideRoot:
		resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS
	case followNever:
		resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS
	}
	f, fi, err := r.openat2(name, resolve)
	switch {
	case err == nil:
		return f, fi, nil
	case errors.Is(err, unix.ENOSYS):
		r.noOpenat2.Store(true)
		return r.openPortable(rel)
	case errors.Is(err, unix.EXDEV) && r.policy == followInsideRoot:
		return r.openAbsoluteLink(rel)
	}
	return nil, nil, mapOpenError(err)
}

func (r *resolver) openAbsoluteLink(rel string) (*os.File, os.FileInfo, error) {
	real, err := filepath.EvalSymlinks(filepath.Join(r.root, rel))
	if err != nil {
		return nil, nil, mapEvalError(err)
	}
	if !within(r.root, real) {
		return nil, nil, errNotFound
	}
	inner, err := filepath.Rel(r.root, real)
	if err != nil {
		return nil, nil, errNotFound
	}
	f, fi, err := r.openat2(inner, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
	if err != nil {
		return nil, nil, mapOpenError(err)
	}
	return f, fi, nil
}

// openat2 opens name relative to the root with O_NONBLOCK, so that opening a FIFO
// cannot block, then accepts only regular files and directories and clears O_NONBLOCK.
func (r *resolver) openat2(name string, resolve uint64) (*os.File, os.FileInfo, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY,
		Resolve: resolve,
	}
	var fd int
	var err error
	for try := 0; try < 4; try++ {
		// EAGAIN: a concurrent rename or mount raced the beneath-check; retry a little.
		fd, err = unix.Openat2(r.rootFD, name, &how)
		if err != unix.EINTR && err != unix.EAGAIN {
			break
		}
	}
	runtime.KeepAlive(r.rootFile)
	if err != nil {
		return nil, nil, os.NewSyscallError("openat2", err)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(r.root, name))
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		f.Close()
		return nil, nil, errNotFound
	}
	return f, fi, nil
}

// lstatAt describes name inside the open directory d without following a final
// symbolic link, relative to d's descriptor so no path outside the root is consulted.
func lstatAt(d *os.File, _ string, name string) (fileMeta, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(int(d.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fileMeta{}, os.NewSyscallError("fstatat", err)
	}
	var mode fs.FileMode
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		mode = fs.ModeDir
	case unix.S_IFLNK:
		mode = fs.ModeSymlink
	case unix.S_IFREG:
	default:
		mode = fs.ModeIrregular
	}
	return fileMeta{mode: mode, size: st.Size, mtime: st.Mtim.Nano()}, nil
}
