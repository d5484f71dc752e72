//go:build !unix

package static

import "errors"

func preadFD(fd int, buf []byte, off int64) (int, error) {
	return 0, errors.New("static tests: reading a descriptor needs a unix system")
}
