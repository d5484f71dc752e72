//go:build !linux || galenet

package engine

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Dial opens an outbound TCP connection to addr owned by the loop and served by h.
// It must be called on the loop. Dial returns the connection at once, and
// h.OnOpen(c) follows when it is established, after which the connection behaves
// like an accepted one. Output written before that is queued and sent once
// connected. If the attempt fails, or does not finish within timeout (timeout <= 0:
// only the system's own limit), h.OnClose(c, err) is called instead, with err a
// *DialError wrapping the syscall error (errors.Is(err, syscall.ECONNREFUSED);
// Timeout() for a timeout). The portable engine connects on a goroutine that posts
// the result to the loop; it reports no error from Dial itself.
func (l *Loop) Dial(addr netip.AddrPort, timeout time.Duration, h Handler) (*Conn, error) {
	c := &Conn{connSys: connSys{fd: -1, h: h, rgo: make(chan struct{}, 1), peer: addr}, loop: l, flags: fConnecting | fDialed}
	l.conns[c] = struct{}{}
	l.nconns++
	if timeout > 0 {
		l.wheel.add(c, l.nowNano+int64(timeout))
	}
	go func() {
		d := net.Dialer{Timeout: timeout}
		nc, err := d.Dial("tcp", addr.String())
		if !l.post(func() { l.dialed(c, nc, err) }) && nc != nil {
			nc.Close()
		}
	}()
	return c, nil
}

// dialed takes the dialing goroutine's result.
func (l *Loop) dialed(c *Conn, nc net.Conn, err error) {
	if c.flags&fClosed != 0 { // timed out or closed by the handler meanwhile
		if nc != nil {
			nc.Close()
		}
		return
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		l.connectTimedOut(c) // the same reason as when the loop's timer ends the wait
		return
	}
	if err != nil {
		l.closeConn(c, &DialError{Addr: c.peer, Err: connectErr(err)})
		return
	}
	c.nc, c.fd = nc, rawFD(nc)
	c.flags &^= fConnecting
	l.wheel.remove(c)
	c.h.OnOpen(c)
	if c.flags&fClosed == 0 {
		c.markDirty() // send what was written while connecting
		go l.readLoop(c)
	}
}

// connectErr returns the system call's error inside a failed net.Dialer.Dial
// (its *net.OpError, "dial tcp ADDR: connect: ...", wraps an *os.SyscallError),
// so that a DialError reads as the Linux engines' do ("engine: dial ADDR:
// connect: connection refused"), not with the address and operation twice.
func connectErr(err error) error {
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Err != nil {
		return oe.Err
	}
	return err
}

// connectTimedOut closes a connection whose connect did not finish in time.
func (l *Loop) connectTimedOut(c *Conn) {
	l.closeConn(c, &DialError{Addr: c.peer, Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)})
}
