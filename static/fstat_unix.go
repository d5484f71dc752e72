//go:build unix

package static

import "golang.org/x/sys/unix"

// onDiskUnchanged reports whether the open file of e still has the size and
// modification time e was built from and still has a name, by fstat(2) on its
// descriptor (no allocation). A file with no link left was deleted or replaced by a
// rename, so the path now names another file or none. A failed fstat counts as
// changed too; in every such case the caller reloads the file by name.
func (e *entry) onDiskUnchanged() bool {
	var st unix.Stat_t
	if err := unix.Fstat(e.fd, &st); err != nil {
		return false
	}
	return st.Nlink > 0 && st.Size == e.size && st.Mtim.Nano() == e.mtime
}
