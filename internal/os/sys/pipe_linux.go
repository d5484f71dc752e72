package sys

import (
	"os"

	"golang.org/x/sys/unix"
)

// Pipe creates a non-blocking, close-on-exec pipe and asks for a capacity of size
// bytes (F_SETPIPE_SZ; the kernel rounds it up to a power of two pages and may
// refuse above /proc/sys/fs/pipe-max-size). It returns the read and write ends
// and the capacity the pipe has, which is the default (64 KiB) when the request
// was refused.
func Pipe(size int) (r, w, capacity int, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return -1, -1, 0, os.NewSyscallError("pipe2", err)
	}
	if size > 0 {
		unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, size)
	}
	capacity, err = unix.FcntlInt(uintptr(p[1]), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return -1, -1, 0, os.NewSyscallError("fcntl", err)
	}
	return p[0], p[1], capacity, nil
}

// SpliceIn moves up to n bytes from the socket rfd into the pipe wfd without
// copying them through user space; neither side blocks (SPLICE_F_NONBLOCK).
// It never sets SPLICE_F_MORE. EAGAIN means the socket is empty or the pipe
// is full. The call cannot sleep (rfd is a non-blocking socket), so it is a raw
// system call that skips the scheduler hand-off, like Read.
func SpliceIn(rfd, wfd, n int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(rfd), 0, uintptr(wfd), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	return int(r), e
}

// PipeBuffered reports how many bytes wait in the pipe whose read end is fd
// (FIONREAD), or -1 if the call fails.
func PipeBuffered(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // TIOCINQ is FIONREAD
	if err != nil {
		return -1
	}
	return n
}
