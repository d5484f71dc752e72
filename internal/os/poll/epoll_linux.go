// Package poll wraps the kernel readiness interface used by the event loops: epoll on
// Linux, with an eventfd to wake a sleeping loop. Other systems use the engine's
// portable fallback, which does not need this package.
package poll

import (
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Event bits re-exported so that callers need not import x/sys.
const (
	In    = unix.EPOLLIN
	Out   = unix.EPOLLOUT
	RDHup = unix.EPOLLRDHUP
	Hup   = unix.EPOLLHUP
	Err   = unix.EPOLLERR
	ET    = unix.EPOLLET
)

// WakeTag is the tag of the wake-up eventfd's events.
const WakeTag = 1

// Poller is one epoll instance plus a wake-up eventfd. Add, Mod, Del and Wait are
// called only by the owning loop; Wake may be called from any goroutine.
type Poller struct {
	epfd  int         // owned by the loop
	evfd  int         // written by Wake from any goroutine, drained by the loop
	armed atomic.Bool // true while a wake-up is pending; guards redundant eventfd writes
}

// New creates an epoll instance with a registered eventfd.
func New() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	p := &Poller{epfd: epfd, evfd: evfd}
	if err := p.Add(evfd, In, WakeTag); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// WakeFd is the descriptor whose readiness means Wake was called.
func (p *Poller) WakeFd() int { return p.evfd }

// Add registers fd for the given events. tag is returned with every event of fd (in
// the event's Pad word) so that the loop can tell kinds of descriptors apart.
func (p *Poller) Add(fd int, events uint32, tag int32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: tag}
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl add", err)
	}
	return nil
}

// Mod changes the events (and tag) registered for fd.
func (p *Poller) Mod(fd int, events uint32, tag int32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: tag}
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl mod", err)
	}
	return nil
}

// Del removes fd from the interest list.
func (p *Poller) Del(fd int) error {
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return os.NewSyscallError("epoll_ctl del", err)
	}
	return nil
}

// epollCtl is a raw epoll_ctl: it never blocks, so it skips the scheduler hand-off.
func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Wait blocks up to msec milliseconds (-1: forever, 0: poll) and fills events.
// EINTR is reported as zero events.
func (p *Poller) Wait(events []unix.EpollEvent, msec int) (int, error) {
	var n int
	var err error
	if msec == 0 {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		n = int(r)
		if e != 0 {
			err = e
		}
	} else {
		n, err = unix.EpollWait(p.epfd, events, msec)
	}
	if err == unix.EINTR {
		return 0, nil
	}
	if err != nil {
		return 0, os.NewSyscallError("epoll_wait", err)
	}
	return n, nil
}

// Wake makes a concurrent or future Wait return. Redundant calls before the loop
// drains the eventfd cost one atomic operation and no system call.
func (p *Poller) Wake() error {
	if !p.armed.CompareAndSwap(false, true) {
		return nil
	}
	var one = [8]byte{1}
	if _, err := unix.Write(p.evfd, one[:]); err != nil && err != unix.EAGAIN {
		return os.NewSyscallError("write eventfd", err)
	}
	return nil
}

// Drain consumes a pending wake-up; the loop calls it when WakeFd is readable, before
// it runs the work that the wake-up announced.
func (p *Poller) Drain() {
	var buf [8]byte
	unix.Read(p.evfd, buf[:])
	p.armed.Store(false)
}

// Drained records that the loop consumed the wake-up by other means (an io_uring
// read of WakeFd): the next Wake writes the eventfd again.
func (p *Poller) Drained() { p.armed.Store(false) }

// Hold marks a wake-up as pending without writing the eventfd, so that Wake calls
// from other goroutines cost one atomic operation while the loop is known to be
// awake and about to look at its tasks. It reports whether it took the mark (false:
// a real wake-up is already pending and will be drained as usual); a loop that took
// it gives it back with Drained and then looks at its tasks once more, because a
// Wake between its last look and Drained wrote nothing.
func (p *Poller) Hold() bool { return p.armed.CompareAndSwap(false, true) }

// Close releases the epoll instance and the eventfd.
func (p *Poller) Close() error {
	unix.Close(p.evfd)
	return unix.Close(p.epfd)
}
