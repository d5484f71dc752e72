package sys

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The functions below issue non-blocking socket system calls directly. They never
// sleep in the kernel (the sockets are O_NONBLOCK), so they use RawSyscall and skip the
// scheduler hand-off that a blocking call needs. They return the raw errno so that the
// caller can test for EAGAIN without unwrapping; callers wrap errors they report.

// Read reads into p.
func Read(fd int, p []byte) (int, unix.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// Write writes p.
func Write(fd int, p []byte) (int, unix.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// Sendmsg gathers iov into one send with the given flags (MSG_MORE to hold a partial
// frame for a following sendfile; MSG_NOSIGNAL is always added).
func Sendmsg(fd int, iov []unix.Iovec, flags int) (int, unix.Errno) {
	if len(iov) == 0 {
		return 0, 0
	}
	var msg unix.Msghdr
	msg.Iov = &iov[0]
	msg.SetIovlen(len(iov))
	r, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags|unix.MSG_NOSIGNAL))
	return int(r), e
}

// Accept accepts one connection as a non-blocking, close-on-exec socket.
func Accept(fd int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, uintptr(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC), 0, 0)
	return int(r), e
}

// AcceptPeer accepts one connection like Accept and fills *sa with the peer's
// address (the kernel returns it with the socket, so no getpeername is needed).
func AcceptPeer(fd int, sa *unix.RawSockaddrAny) (int, unix.Errno) {
	n := uint32(unix.SizeofSockaddrAny)
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&n)), uintptr(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC), 0, 0)
	return int(r), e
}

// PeerName fills *sa with the peer address of the connected socket fd
// (getpeername(2) without the allocation of unix.Getpeername). It fails with ENOTCONN
// once the peer has reset the connection, so callers that need the address later ask
// at once.
func PeerName(fd int, sa *unix.RawSockaddrAny) unix.Errno {
	n := uint32(unix.SizeofSockaddrAny)
	_, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&n)))
	return e
}

// PeerIPv4 extracts an IPv4 peer (address and port, host order for the port) from a
// raw socket address, reporting false for other families.
func PeerIPv4(sa *unix.RawSockaddrAny) (addr [4]byte, port uint16, ok bool) {
	if sa.Addr.Family != unix.AF_INET {
		return addr, 0, false
	}
	in := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
	p := (*[2]byte)(unsafe.Pointer(&in.Port))
	return in.Addr, uint16(p[0])<<8 | uint16(p[1]), true
}

// PeerIPv6 extracts an IPv6 peer (IPv4-mapped addresses unmapped, a link-local
// peer's scope kept as its zone) from a raw socket address, reporting false for other
// families.
func PeerIPv6(sa *unix.RawSockaddrAny) (netip.AddrPort, bool) {
	if sa.Addr.Family != unix.AF_INET6 {
		return netip.AddrPort{}, false
	}
	in := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
	p := (*[2]byte)(unsafe.Pointer(&in.Port))
	return netip.AddrPortFrom(Addr6(in.Addr, in.Scope_id), uint16(p[0])<<8|uint16(p[1])), true
}

// Sendfile sends up to n bytes of file infd starting at *off to the socket outfd and
// advances *off. It may copy page-cache pages for a while, so it goes through the
// scheduler-aware Syscall path.
func Sendfile(outfd, infd int, off *int64, n int) (int, unix.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_SENDFILE, uintptr(outfd), uintptr(infd), uintptr(unsafe.Pointer(off)), uintptr(n), 0, 0)
	return int(r), e
}

// Splice moves up to n bytes from the pipe rfd to the socket wfd without copying
// them through user space; neither side blocks (SPLICE_F_NONBLOCK, and wfd is a
// non-blocking socket). Unlike Sendfile it never waits for a disk: the pages in
// a pipe are already in memory (a file's pages were read in when they were
// spliced into it). It is therefore a raw system call that skips the scheduler
// hand-off, like Sendmsg; two of them move each chunk of a spliced relay.
func Splice(rfd, wfd, n int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(rfd), 0, uintptr(wfd), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	return int(r), e
}

// Pread reads from a file at an offset; the fallback when sendfile is not possible.
func Pread(fd int, p []byte, off int64) (int, error) {
	return unix.Pread(fd, p, off)
}

// SetLinger0 makes the next close reset the connection (SO_LINGER 0); used to abort.
func SetLinger0(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
}

// ShutdownWrite half-closes the sending side of a socket.
func ShutdownWrite(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) }

// Close closes fd.
func Close(fd int) error { return unix.Close(fd) }
