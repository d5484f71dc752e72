//go:build unix

package static

import "syscall"

// onDiskUnchanged reports whether the open file of e still has the size and
// modification time e was built from, by fstat(2) on its descriptor (no allocation).
// A failed fstat counts as changed, so the caller reloads the file.
func (e *entry) onDiskUnchanged() bool {
	var st syscall.Stat_t
	if err := syscall.Fstat(e.fd, &st); err != nil {
		return false
	}
	return st.Size == e.size && st.Mtim.Nano() == e.mtime
}
