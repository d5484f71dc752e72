//go:build linux && !galenet

package engine

import (
	"net/netip"
	"os"

	"github.com/gale-server/gale/internal/os/sys"
	"golang.org/x/sys/unix"
)

// Flags of the epoll engine, after the shared ones (conn.go).
const (
	fReadPending uint32 = fPlatform << iota // the socket may hold unread bytes (paused while readable)
	fWaitOut                                // the socket refused output; waiting for EPOLLOUT
	fPeer6                                  // the peer is kept in the loop's peers6 map
	fReadNotify                             // report readiness (OnReadable) instead of reading
)

// connSys is the epoll engine's part of a Conn: four words of scalars that fill
// what would otherwise be padding before the shared fields.
type connSys struct {
	fd       int32
	hidx     uint16  // the handler's index in the loop's handler table
	peerPort uint16  // IPv4 peer port (see hasPeer4)
	peer4    [4]byte // IPv4 peer address; with peerPort all zero when not known
}

// inbuf holds a connection's unconsumed input: a holder from the loop's free list
// around a pooled buffer, so that the Conn spends one word on it.
type inbuf = *[]byte

// handler returns the connection's Handler.
func (c *Conn) handler() Handler { return c.loop.handlers.list[c.hidx] }

// input returns the unconsumed input held for the connection.
func (c *Conn) input() []byte {
	if c.in == nil {
		return nil
	}
	return *c.in
}

// Fd returns the socket descriptor, for socket options and diagnostics.
func (c *Conn) Fd() int { return int(c.fd) }

// RemoteAddr returns the peer address (IPv4-mapped IPv6 addresses unmapped, a
// link-local peer's interface as the zone), kept from accept(2), from the
// getpeername(2) io_uring makes right after its accept, or from Dial: an IPv4 peer in
// the struct's padding, an IPv6 peer in a per-loop map, so that asking costs no system
// call and still answers after the peer has reset the connection.
func (c *Conn) RemoteAddr() netip.AddrPort {
	switch {
	case c.hasPeer4():
		return netip.AddrPortFrom(netip.AddrFrom4(c.peer4), c.peerPort)
	case c.flags&fPeer6 != 0:
		return c.loop.peers6[c]
	}
	ap, err := sys.PeerAddr(int(c.fd))
	if err == nil && c.flags&fClosed == 0 {
		c.setPeer(ap) // accepted by io_uring, whose multishot accept gives no address
	}
	return ap
}

// SetRemoteAddr replaces the peer address RemoteAddr reports, for a connection
// whose real client is known from elsewhere (a PROXY protocol header sent by a
// trusted load balancer). It must be called on the connection's loop.
func (c *Conn) SetRemoteAddr(ap netip.AddrPort) {
	if c.flags&fPeer6 != 0 {
		delete(c.loop.peers6, c)
	}
	c.flags &^= fPeer6
	c.peer4, c.peerPort = [4]byte{}, 0
	c.setPeer(ap)
}

// hasPeer4 reports whether peer4 and peerPort hold the IPv4 peer. They say so
// themselves, sparing a flag bit: a TCP peer is never 0.0.0.0 port 0 (a PROXY
// header claiming so is then answered by getpeername instead).
func (c *Conn) hasPeer4() bool { return c.peerPort != 0 || c.peer4 != [4]byte{} }

// setPeer keeps the peer address: IPv4 in the struct, anything else in the loop's map.
func (c *Conn) setPeer(ap netip.AddrPort) {
	if a := ap.Addr().Unmap(); a.Is4() {
		c.peer4, c.peerPort = a.As4(), ap.Port()
		return
	}
	if c.loop.peers6 == nil {
		c.loop.peers6 = make(map[*Conn]netip.AddrPort)
	}
	c.loop.peers6[c] = ap
	c.flags |= fPeer6
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
func (c *Conn) SetHandler(h Handler) {
	old := c.hidx
	c.hidx = c.loop.handlers.acquire(h)
	c.loop.handlers.release(old)
}

// SendFile queues n bytes of file fd from offset off, sent with sendfile(2). release,
// if not nil, is called exactly once, on the loop, when the segment has been sent or
// the connection closed. fd must stay open until then.
func (c *Conn) SendFile(fd int, off, n int64, release func()) error {
	return c.queueFile(seg{file: fd, foff: off, fn: n, release: release})
}

// queueFile queues a file or pipe segment.
func (c *Conn) queueFile(s seg) error {
	if done, err := c.nothingToSend(s.fn, s.release); done {
		return err
	}
	q := c.queue()
	q.segs = append(q.segs, s)
	c.markDirty()
	return nil
}

// SplicePipe queues n bytes that are waiting in the pipe pipeFd (its read end),
// moved to the socket with splice(2) without passing through user space. The bytes
// must already be in the pipe (typically spliced there from another socket): an
// empty pipe looks like a full socket, and only the write timeout ends the wait. A
// pipe that ends (its write end closed) before n bytes closes the connection with
// ErrPipeShort. release, if not nil, is called exactly once, on the loop, when the
// bytes have been sent or the connection closed; pipeFd must stay open until then.
func (c *Conn) SplicePipe(pipeFd int, n int64, release func()) error {
	return c.queueFile(seg{file: pipeFd, fn: n, release: release, pipe: true})
}

// SetReadNotify switches the connection between the engine reading it (the
// default: bytes arrive in OnData) and the handler reading it: while on, the
// engine makes no read and calls the handler's OnReadable (see ReadNotifyHandler)
// whenever the socket may have become readable, and the handler reads or splices
// from Fd itself. It reports whether the mode is now as asked: turning it on fails
// when the handler has no OnReadable or the engine still holds unconsumed input.
// OnReadable follows at the end of this iteration, in case bytes are waiting.
func (c *Conn) SetReadNotify(on bool) bool {
	if c.flags&fClosed != 0 {
		return false
	}
	if !on {
		c.flags &^= fReadNotify
		c.flags |= fReadPending // the handler may have left bytes in the socket
		c.loop.schedule(c)
		return true
	}
	if _, ok := c.handler().(ReadNotifyHandler); !ok || c.Unread() > 0 {
		return false
	}
	c.flags |= fReadNotify | fReadPending
	c.loop.schedule(c)
	return true
}

// CloseWrite half-closes the connection: it shuts down the sending side (the peer
// reads end of stream after the bytes already sent) and keeps reading. It must be
// called with no output queued (Pending false, as in OnFlushed); otherwise it
// returns ErrOutputQueued and does nothing. Later writes fail.
func (c *Conn) CloseWrite() error {
	switch {
	case c.flags&(fClosed|fBroken) != 0:
		return ErrClosed
	case c.Pending():
		return ErrOutputQueued
	}
	return sys.ShutdownWrite(int(c.fd))
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
		if z := c.loop.zc.conns[c]; z != nil {
			z.abort = true // the reset drops the pages: no need to wait for completions
		}
	}
	c.loop.closeConn(c, err)
}

// segFile is what a file or pipe segment sends from: the caller's descriptor.
type segFile = int

// outq is a connection's output queue; owned by the loop, recycled when empty.
type outq struct {
	segs     []seg
	mem      int    // bytes of memory queued
	err      error  // the write error that broke the connection (fBroken)
	progress int64  // loop time of the queue's creation or its last sent byte
	wt       Timer  // the write timeout's timer (SetWriteTimeout); armed only while output waits
	us       *usend // io_uring: the in-flight sendmsg's header and vector, kept for reuse
}

func (q *outq) appendMem(l *Loop, p []byte) {
	q.mem += len(p)
	if n := len(q.segs); n > 0 {
		t := &q.segs[n-1]
		if t.buf != nil && t.release == nil && cap(t.buf) > len(t.buf) {
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

// appendRef queues the caller's bytes b, not copied, released by release.
func (q *outq) appendRef(b []byte, release func()) {
	q.mem += len(b)
	q.segs = append(q.segs, seg{buf: b, file: -1, release: release})
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

// WriteNow is Write for a caller that forwards bytes it has just read: when
// nothing is queued before p, p goes to the socket in this call, from p itself
// (no copy into the output queue, no wait for the end of the iteration), and
// only what the socket did not take is queued, as Write would. Otherwise, and
// on the io_uring backend, it is Write. A relay passes a read on in the same
// wake-up with one system call.
func (c *Conn) WriteNow(p []byte) error {
	if c.flags&(fClosed|fBroken|fConnecting|fWaitOut|fCloseAfterFlush|fLinger|fZC) != 0 || c.Pending() || c.loop.ur != nil || len(p) == 0 {
		return c.Write(p)
	}
	l := c.loop
	v := unix.Iovec{Base: &p[0]}
	v.SetLen(len(p))
	l.iov = append(l.iov[:0], v)
	n, e := sys.Sendmsg(int(c.fd), l.iov, 0) // MSG_NOSIGNAL: a reset peer is an error, not SIGPIPE
	switch {
	case e == unix.EAGAIN || e == unix.EINTR:
		n = 0
	case e != 0:
		return c.Write(p) // the flush at the end of the iteration meets the error and closes
	default:
		l.stats.bytesOut.Add(uint64(n))
	}
	if n == len(p) {
		return nil
	}
	return c.Write(p[n:]) // flushed at the end of the iteration, or on EPOLLOUT
}
