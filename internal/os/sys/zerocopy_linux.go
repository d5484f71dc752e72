package sys

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ZeroCopyDone is one completion notification of MSG_ZEROCOPY sends, read from a
// socket's error queue: the sends numbered Lo through Hi (inclusive, counted per
// socket from 0) have been released by the kernel. Copied reports that the kernel
// copied the data after all (loopback delivery, a device without scatter-gather), so
// that zero-copy gained nothing for those sends.
type ZeroCopyDone struct {
	Lo, Hi uint32
	Copied bool
}

// SetZeroCopy turns SO_ZEROCOPY on for fd, which MSG_ZEROCOPY sends require.
func SetZeroCopy(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, 1); err != nil {
		return os.NewSyscallError("setsockopt SO_ZEROCOPY", err)
	}
	return nil
}

// ReadZeroCopyDone reads one message from fd's error queue without blocking. It
// returns ok false with errno EAGAIN when the queue is empty; a message that is not
// a zero-copy notification (an ICMP error, say) is returned with ok false and errno
// 0, and the caller reads on. oob is scratch space of at least 64 bytes.
func ReadZeroCopyDone(fd int, oob []byte) (d ZeroCopyDone, ok bool, errno unix.Errno) {
	var msg unix.Msghdr
	msg.Control = &oob[0]
	msg.SetControllen(len(oob))
	_, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT))
	if e != 0 {
		return d, false, e
	}
	b := oob[:msg.Controllen]
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		n := int(h.Len)
		if n < unix.SizeofCmsghdr || n > len(b) {
			break
		}
		if (h.Level == unix.SOL_IP && h.Type == unix.IP_RECVERR || h.Level == unix.SOL_IPV6 && h.Type == unix.IPV6_RECVERR) &&
			n >= unix.SizeofCmsghdr+int(unsafe.Sizeof(unix.SockExtendedErr{})) {
			ee := (*unix.SockExtendedErr)(unsafe.Pointer(&b[unix.SizeofCmsghdr]))
			if ee.Origin == unix.SO_EE_ORIGIN_ZEROCOPY && ee.Errno == 0 {
				return ZeroCopyDone{Lo: ee.Info, Hi: ee.Data, Copied: ee.Code&unix.SO_EE_CODE_ZEROCOPY_COPIED != 0}, true, 0
			}
		}
		adv := (n + 7) &^ 7
		if adv > len(b) {
			break
		}
		b = b[adv:]
	}
	return d, false, 0
}
