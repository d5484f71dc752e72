//go:build unix && !linux

package supervisor

import "os"

// anonFile returns a new file with no name, for text handed to a worker: an
// unlinked temporary file.
func anonFile(name string) (*os.File, error) { return unlinkedTemp(name) }
