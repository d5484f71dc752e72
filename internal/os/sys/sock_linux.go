// Package sys holds the Linux system-call helpers the engine needs: listening sockets
// with SO_REUSEPORT, socket options, CPU affinity and the zero-copy send paths. Every
// error names the system call that failed (os.NewSyscallError).
package sys

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/gale-server/gale/internal/os/listenaddr"
	"golang.org/x/sys/unix"
)

// ListenBacklog is the accept queue length requested for listening sockets. The kernel
// caps it at net.core.somaxconn (4,096 by default), so the operator's sysctl alone decides
// the queue, as for Go's own listeners; the same figure bounds the queue of half-open
// connections (SYNs) when SYN cookies are on. Neither queue is allocated in advance.
const ListenBacklog = 65535

// ParseAddr resolves "host:port" with listenaddr.Resolve (the rules `gale check`
// validates with) into a socket address and its family.
func ParseAddr(addr string) (unix.Sockaddr, int, error) {
	ap, err := listenaddr.Resolve(addr)
	if err != nil {
		return nil, 0, err
	}
	ip, port := ap.Addr(), int(ap.Port())
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: port, Addr: ip.As4()}, unix.AF_INET, nil
	}
	return &unix.SockaddrInet6{Port: port, Addr: ip.As16(), ZoneId: ZoneIndex(ip.Zone())}, unix.AF_INET6, nil
}

// Listen opens a non-blocking listening TCP socket on addr with SO_REUSEADDR and, when
// reusePort is set, SO_REUSEPORT, so that each event loop can own one socket on the
// same address and the kernel spreads new connections over them.
func Listen(addr string, reusePort bool) (int, error) {
	sa, family, err := ParseAddr(addr)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	fail := func(call string, err error) (int, error) {
		unix.Close(fd)
		return -1, os.NewSyscallError(call, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt SO_REUSEADDR", err)
	}
	if reusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail("setsockopt SO_REUSEPORT", err)
		}
	}
	// Accepted sockets inherit TCP_NODELAY from the listener on Linux, which saves one
	// setsockopt per connection.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fail("setsockopt TCP_NODELAY", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, ListenBacklog); err != nil {
		return fail("listen", err)
	}
	return fd, nil
}

// ErrAddrInUse is returned (wrapped) by CheckFree for an address that a
// listening socket already holds.
var ErrAddrInUse = errors.New("address already in use (another process listens on it)")

// CheckFree reports an error wrapping ErrAddrInUse when a listening socket
// already holds addr. SO_REUSEPORT lets every socket of the same user bind an
// address that such sockets hold, and the kernel then splits new connections
// between them at random: a second gale started on the same ports would take
// half of the first one's clients without a word. So before the first socket of
// an address is bound, a socket without SO_REUSEPORT tries the bind (and is
// closed): it fails with EADDRINUSE exactly when something listens there.
// Port 0 (any free port) is always free.
func CheckFree(addr string) error {
	err := tryBind(addr, false)
	if errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("bind: %w", ErrAddrInUse)
	}
	// Any other failure is left to the real bind, which reports it.
	return nil
}

// CheckBindable reports the error a listening socket of Listen(addr, true)
// would meet at bind (an address not on this host, a port taken by a socket
// without SO_REUSEPORT, a privileged port), without binding anything. A reload
// checks every address it adds first, so that one that cannot be bound refuses
// the reload before any other has started listening.
func CheckBindable(addr string) error { return tryBind(addr, true) }

// tryBind binds a socket with Listen's options (SO_REUSEPORT when reusePort)
// to addr and closes it, reporting the bind's error. Port 0 (any free port)
// always succeeds.
func tryBind(addr string, reusePort bool) error {
	sa, family, err := ParseAddr(addr)
	if err != nil {
		return err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		if a.Port == 0 {
			return nil
		}
	case *unix.SockaddrInet6:
		if a.Port == 0 {
			return nil
		}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}
	if reusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return os.NewSyscallError("setsockopt SO_REUSEPORT", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	return nil
}

// LocalAddr returns the bound address of fd as "ip:port".
func LocalAddr(fd int) (string, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", os.NewSyscallError("getsockname", err)
	}
	return SockaddrString(sa), nil
}

// PeerAddr returns the remote address of a connected socket as a netip.AddrPort.
func PeerAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return netip.AddrPort{}, os.NewSyscallError("getpeername", err)
	}
	return sockaddrAddrPort(sa, "getpeername")
}

// LocalAddrPort returns the local address of a connected or bound socket.
func LocalAddrPort(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, os.NewSyscallError("getsockname", err)
	}
	return sockaddrAddrPort(sa, "getsockname")
}

func sockaddrAddrPort(sa unix.Sockaddr, call string) (netip.AddrPort, error) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(Addr6(a.Addr, a.ZoneId), uint16(a.Port)), nil
	}
	return netip.AddrPort{}, fmt.Errorf("%s: unsupported address family %T", call, sa)
}

// SockaddrString formats an IPv4 or IPv6 socket address as "ip:port".
func SockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(Addr6(a.Addr, a.ZoneId), uint16(a.Port)).String()
	}
	return fmt.Sprint(sa)
}

// SetAffinity pins the calling OS thread to cpu.
func SetAffinity(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return os.NewSyscallError("sched_setaffinity", err)
	}
	return nil
}

// AllowedCPUs lists the CPUs this process may run on, in ascending order.
func AllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, os.NewSyscallError("sched_getaffinity", err)
	}
	var cpus []int
	for i := 0; i < 1024 && len(cpus) < set.Count(); i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// ConnectStart opens a non-blocking, close-on-exec TCP socket with TCP_NODELAY and
// starts connecting it to addr. It returns the descriptor once the connection is
// established or in progress (EINPROGRESS): the socket becomes writable when the
// attempt ends, and SocketError tells how it ended. An error means no descriptor
// is left open.
func ConnectStart(addr netip.AddrPort) (int, error) {
	var sa unix.Sockaddr
	family := unix.AF_INET
	if a := addr.Addr().Unmap(); a.Is4() {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: a.As4()}
	} else if a.Is6() {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: a.As16(), ZoneId: ZoneIndex(a.Zone())}
	} else {
		return -1, fmt.Errorf("connect: invalid address %v", addr)
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("setsockopt TCP_NODELAY", err)
	}
	// A non-blocking connect that is interrupted goes on in the background, like one
	// in progress.
	if err = unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
		unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	return fd, nil
}

// SocketError returns and clears the socket's pending error (SO_ERROR); 0 when none.
func SocketError(fd int) unix.Errno {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if e, ok := err.(unix.Errno); ok {
		return e
	}
	return unix.Errno(v)
}

// SetDeferAccept sets TCP_DEFER_ACCEPT on a listening socket: the kernel holds a
// new connection until data arrives on it, for about secs seconds, before it is
// queued for accept; 0 turns it off.
func SetDeferAccept(fd, secs int) error {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs); err != nil {
		return os.NewSyscallError("setsockopt TCP_DEFER_ACCEPT", err)
	}
	return nil
}

// SocketUnread reports how many received bytes wait unread in a stream socket
// (SIOCINQ), or -1 if the call fails.
func SocketUnread(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		return -1
	}
	return n
}
