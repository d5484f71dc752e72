//go:build linux && !galenet

package engine

import (
	"net/netip"
	"time"

	"github.com/gale-server/gale/internal/os/sys"
	"golang.org/x/sys/unix"
)

// Dial opens an outbound TCP connection to addr owned by the loop and served by h.
// It must be called on the loop. The connect is non-blocking (TCP_NODELAY set):
// Dial returns the connection at once, and h.OnOpen(c) follows when it is
// established, after which the connection behaves like an accepted one. Output
// written before that is queued and sent once connected. If the attempt fails, or
// does not finish within timeout (timeout <= 0: only the kernel's own limit),
// h.OnClose(c, err) is called instead, with err a *DialError wrapping the syscall
// error (errors.Is(err, syscall.ECONNREFUSED); Timeout() for a timeout). Failures
// found at once (no descriptor, an invalid address) are returned as a *DialError
// and no callback runs.
func (l *Loop) Dial(addr netip.AddrPort, timeout time.Duration, h Handler) (*Conn, error) {
	fd, err := sys.ConnectStart(addr)
	if err != nil {
		return nil, &DialError{Addr: addr, Err: err}
	}
	// fWaitOut holds output back until the connect completes.
	hidx := l.handlers.acquire(h)
	c, err := l.register(fd, hidx, fConnecting|fWaitOut|fDialed)
	if err != nil {
		l.handlers.release(hidx)
		return nil, &DialError{Addr: addr, Err: err}
	}
	c.setPeer(addr)
	if timeout > 0 {
		l.wheel.add(c, l.nowNano+int64(timeout))
	}
	return c, nil
}

// connected finishes a connect that has reported an event: on success it opens the
// connection and reports true (the event is then handled like any other); on
// failure it closes the connection with the reason.
func (l *Loop) connected(c *Conn) bool {
	if e := sys.SocketError(int(c.fd)); e != 0 {
		l.closeConn(c, &DialError{Addr: c.RemoteAddr(), Err: errnoErr("connect", e)})
		return false
	}
	c.flags &^= fConnecting
	l.wheel.remove(c)
	c.handler().OnOpen(c)
	return c.flags&fClosed == 0
}

// connectTimedOut closes a connection whose connect did not finish in time.
func (l *Loop) connectTimedOut(c *Conn) {
	l.closeConn(c, &DialError{Addr: c.RemoteAddr(), Err: errnoErr("connect", unix.ETIMEDOUT)})
}
