//go:build linux && !galenet

package server

import "golang.org/x/sys/unix"

// shrinkReceive lowers a tarpitted socket's receive buffer to the kernel's
// minimum, so that the window it advertises from now on stops the flood after a
// few KiB instead of growing with autotuning. It reports whether the kernel took
// it; a failure only leaves the buffer as it was.
func shrinkReceive(fd int) bool {
	return fd >= 0 && unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) == nil
}
