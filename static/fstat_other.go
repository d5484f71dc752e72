//go:build !unix

package static

// onDiskUnchanged reports whether the open file of e still has the size and
// modification time e was built from. A failed stat counts as changed, so the
// caller reloads the file. (The link count, which shows a deleted or renamed-over
// file on Unix, is not portable; such files are seen at the next revalidation.)
func (e *entry) onDiskUnchanged() bool {
	fi, err := e.file.Stat()
	return err == nil && fi.Size() == e.size && fi.ModTime().UnixNano() == e.mtime
}
