//go:build !unix && !windows

package engine

import (
	"errors"
	"os"
)

// errNoDup is the close reason of a connection that was given a file to send on a
// system where descriptors cannot be duplicated (js, wasip1, plan9).
var errNoDup = errors.New("engine: SendFile needs descriptor duplication, which this system lacks")

// dupFile always fails here; SendFile then closes the connection with errNoDup.
func dupFile(int) (*os.File, error) { return nil, errNoDup }
