//go:build !unix

package nethttp

import (
	"errors"
	"os"
)

// dupFile reports that descriptors cannot be duplicated here: ReadFrom copies the
// file through Write instead.
func dupFile(*os.File) (*os.File, error) {
	return nil, errors.New("nethttp: no dup on this platform")
}
