//go:build !unix

package servertest

import "errors"

// preadAll reports that reading a descriptor by number needs a unix system; set
// Exchange.ReadFile there.
func preadAll(fd int, off, n int64) ([]byte, error) {
	return nil, errors.New("servertest: reading a descriptor needs a unix system; set Exchange.ReadFile")
}
