//go:build linux && !galenet

package engine

import (
	"net/netip"
	"os"

	"github.com/gale-server/gale/internal/os/sys"
	"golang.org/x/sys/unix"
)

// Connection flags; owned by the connection's loop.
const (
	fClosed          uint32 = 1 << iota // closed; no more callbacks except none
	fPaused                             // handler asked to stop reading
	fHiPaused                           // output above high water: reading stopped
	fReadPending                        // the socket may hold unread bytes (paused while readable)
	fDirty                              // in the loop's flush list
	fPending                            // in the loop's resume list
	fWantDrain                          // call OnDrain at low water
	fCloseAfterFlush                    // close once output is flushed
	fLinger                             // write side shut; discarding input until EOF or timeout
	fWaitOut                            // the socket refused output; waiting for EPOLLOUT
	fEOF                                // the peer closed its sending side
	fBroken                             // a write failed inside Write; closed at the end of the iteration
	fPeer4                              // peer4/peerPort hold the IPv4 peer from accept
	fNoLinger                           // with fCloseAfterFlush: close at once once flushed
	fWantFlushed                        // call OnFlushed once the output queue is empty
)

// Conn is one accepted TCP connection. It is owned by its loop: every method must be
// called on that loop (from a Handler callback or a closure passed to Loop.Post).
// An idle connection holds no buffer; the struct itself is kept small.
type Conn struct {
	fd        int32
	flags     uint32
	tdeadline uint32 // timer tick relative to the wheel's base, 0 when not armed
	hidx      uint16 // the handler's index in the loop's handler table
	peerPort  uint16 // IPv4 peer port when fPeer4 is set
	peer4     [4]byte
	wto       uint32 // write timeout in milliseconds, 0 when off (SetWriteTimeout)
	loop      *Loop
	ctx       any
	in        *[]byte // unconsumed input (a pooled buffer), nil when none
	out       *outq   // queued output, nil when none
	tnext     *Conn   // timing wheel links
	tprev     *Conn
}

// handler returns the connection's Handler.
func (c *Conn) handler() Handler { return c.loop.handlers[c.hidx] }

// input returns the unconsumed input held for the connection.
func (c *Conn) input() []byte {
	if c.in == nil {
		return nil
	}
	return *c.in
}

// Fd returns the socket descriptor, for socket options and diagnostics.
func (c *Conn) Fd() int { return int(c.fd) }

// RemoteAddr returns the peer address. An IPv4 peer is kept from accept(2) in the
// struct's padding; other families cost one getpeername call.
func (c *Conn) RemoteAddr() netip.AddrPort {
	if c.flags&fPeer4 != 0 {
		return netip.AddrPortFrom(netip.AddrFrom4(c.peer4), c.peerPort)
	}
	ap, _ := sys.PeerAddr(int(c.fd))
	return ap
}

// LocalAddr returns the connection's local address (one getsockname call).
func (c *Conn) LocalAddr() netip.AddrPort {
	ap, _ := sys.LocalAddrPort(int(c.fd))
	return ap
}

// SetHandler re-parents the connection: every later event goes to h (HTTP to
// WebSocket, HTTP to a tunnel, an upstream connection parked in a pool). It must be
// called on the connection's loop; h's OnOpen is not called. The connection's
// context is left as it is: the new handler usually sets its own.
func (c *Conn) SetHandler(h Handler) { c.hidx = c.loop.handlerIndex(h) }

// SendFile queues n bytes of file fd from offset off, sent with sendfile(2). release,
// if not nil, is called exactly once, on the loop, when the segment has been sent or
// the connection closed. fd must stay open until then.
func (c *Conn) SendFile(fd int, off, n int64, release func()) error {
	if done, err := c.nothingToSend(n, release); done {
		return err
	}
	q := c.queue()
	q.segs = append(q.segs, seg{file: fd, foff: off, fn: n, release: release})
	c.markDirty()
	return nil
}

// PauseRead stops reading from the connection until ResumeRead.
func (c *Conn) PauseRead() { c.flags |= fPaused }

// Unread reports how many unconsumed input bytes the engine holds for the connection.
func (c *Conn) Unread() int { return len(c.input()) }

// Abort closes the connection at once with a TCP reset (SO_LINGER 0), discarding
// queued output; err is reported to OnClose.
func (c *Conn) Abort(err error) {
	if c.flags&fClosed == 0 {
		sys.SetLinger0(int(c.fd))
	}
	c.loop.closeConn(c, err)
}

// seg is one piece of queued output: memory (buf[off:]) or a file range.
type seg struct {
	buf     []byte
	off     int
	file    int
	foff    int64
	fn      int64
	release func()
}

// outq is a connection's output queue; owned by the loop, recycled when empty.
type outq struct {
	segs     []seg
	mem      int   // bytes of memory queued
	err      error // the write error that broke the connection (fBroken)
	progress int64 // loop time of the queue's creation or its last sent byte
	wt       Timer // the write timeout's timer (SetWriteTimeout); armed only while output waits
}

func (q *outq) appendMem(l *Loop, p []byte) {
	q.mem += len(p)
	if n := len(q.segs); n > 0 {
		t := &q.segs[n-1]
		if t.buf != nil && cap(t.buf) > len(t.buf) {
			k := copy(t.buf[len(t.buf):cap(t.buf)], p)
			t.buf = t.buf[:len(t.buf)+k]
			p = p[k:]
		}
	}
	for len(p) > 0 {
		b := l.cache.Get(min(max(len(p), 4096), 64<<10))[:0]
		k := copy(b[:cap(b)], p)
		q.segs = append(q.segs, seg{buf: b[:k], file: -1})
		p = p[k:]
	}
}

// sendNow sends queued output from inside Write to bound memory, leaving closing and
// callbacks to the end of the loop iteration (the caller is usually a handler in the
// middle of its work).
func (l *Loop) sendNow(c *Conn) error {
	if err := l.writeOut(c); err != nil {
		c.out.err = err
		c.flags |= fBroken
		return ErrClosed
	}
	return nil
}

// lastProgress is the loop time of q's last sent byte (or its creation).
func (l *Loop) lastProgress(_ *Conn, q *outq) int64 { return q.progress }

// errnoErr turns a raw errno into a syscall error naming the call.
func errnoErr(call string, e unix.Errno) error { return os.NewSyscallError(call, e) }
