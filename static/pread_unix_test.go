//go:build unix

package static

import "syscall"

func preadFD(fd int, buf []byte, off int64) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := syscall.Pread(fd, buf[n:], off+int64(n))
		if err != nil || m == 0 {
			return n, err
		}
		n += m
	}
	return n, nil
}
