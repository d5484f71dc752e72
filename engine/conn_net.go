//go:build !linux || galenet

package engine

import (
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Flags of the portable engine, after the shared ones (conn.go).
const (
	fWriting uint32 = fPlatform << iota // a writer goroutine holds the head of the output queue
)

// connSys is the portable engine's part of a Conn. A connection has a reader
// goroutine, which reads into its own buffer and posts each chunk to the loop, then
// waits until the loop has consumed the chunk before it reads again; output is
// written by a short-lived goroutine per batch, so that the loop never blocks.
type connSys struct {
	nc    net.Conn       // set before any reader or writer starts (at accept, or when a dial completes), then immutable
	fd    int            // set with nc; the socket descriptor, or -1
	peer  netip.AddrPort // the address dialed (Loop.Dial), or set by SetRemoteAddr; owned by the loop
	h     Handler        // owned by the loop; replaced by SetHandler
	rgo   chan struct{}  // immutable; the loop sends when the reader may reuse its buffer, closes on close
	wprog atomic.Int64   // written by writer goroutines: unix nanoseconds of their last sent byte
	held  []byte         // owned by the loop: a chunk that arrived while reading was paused; it lives in the reader's buffer
	rwait bool           // owned by the loop: the reader waits for permission until the retained input falls below maxRetained
}

// inbuf holds a connection's unconsumed input (a pooled buffer).
type inbuf = []byte

// Fd returns the socket descriptor (the SOCKET handle on Windows), for socket
// options and diagnostics, or -1 when the system does not expose it.
func (c *Conn) Fd() int { return c.fd }

// handler returns the connection's Handler.
func (c *Conn) handler() Handler { return c.h }

// RemoteAddr returns the peer address (IPv4-mapped IPv6 addresses unmapped).
func (c *Conn) RemoteAddr() netip.AddrPort {
	if c.nc == nil || c.peer.IsValid() {
		return c.peer
	}
	a, ok := c.nc.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// SetRemoteAddr replaces the peer address RemoteAddr reports, for a connection
// whose real client is known from elsewhere (a PROXY protocol header sent by a
// trusted load balancer). It must be called on the connection's loop.
func (c *Conn) SetRemoteAddr(ap netip.AddrPort) {
	c.peer = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// LocalAddr returns the connection's local address (IPv4-mapped IPv6 addresses unmapped).
func (c *Conn) LocalAddr() netip.AddrPort {
	if c.nc == nil {
		return netip.AddrPort{}
	}
	a, ok := c.nc.LocalAddr().(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// SetHandler re-parents the connection: every later event goes to h (HTTP to
// WebSocket, HTTP to a tunnel, an upstream connection parked in a pool). It must be
// called on the connection's loop; h's OnOpen is not called. The connection's
// context is left as it is: the new handler usually sets its own.
func (c *Conn) SetHandler(h Handler) { c.h = h }

// SendFile queues n bytes of file fd from offset off. release, if not nil, is called
// exactly once, on the loop, when the segment has been sent or the connection
// closed. fd must stay open until then. The portable engine sends from a duplicate
// of fd, taken now; if the system refuses the duplicate, the connection is closed
// with that error at the end of the loop iteration.
func (c *Conn) SendFile(fd int, off, n int64, release func()) error {
	return c.queueFile(fd, off, n, release, false)
}

// SplicePipe queues n bytes that are waiting in the pipe pipeFd (its read end). The
// portable engine has no splice(2): it reads them from a duplicate of pipeFd, taken
// now, and writes them like other output. The bytes must already be in the pipe. A
// pipe that ends before n bytes closes the connection with ErrPipeShort. release, if
// not nil, is called exactly once, on the loop, when the bytes have been sent or the
// connection closed.
func (c *Conn) SplicePipe(pipeFd int, n int64, release func()) error {
	return c.queueFile(pipeFd, 0, n, release, true)
}

// queueFile queues a segment read from a duplicate of fd: a file range, or the next
// n bytes of a pipe.
func (c *Conn) queueFile(fd int, off, n int64, release func(), pipe bool) error {
	if done, err := c.nothingToSend(n, release); done {
		return err
	}
	q := c.queue()
	f, err := dupFile(fd)
	if err != nil {
		if release != nil {
			release()
		}
		q.err = err
		c.flags |= fBroken
		c.markDirty()
		return ErrClosed
	}
	q.segs = append(q.segs, seg{file: f, foff: off, fn: n, release: release, pipe: pipe})
	c.markDirty()
	return nil
}

// SetReadNotify reports false when asked to turn read notification on: the
// portable engine reads every connection with its reader goroutine, so bytes keep
// arriving in OnData. Turning it off always succeeds.
func (c *Conn) SetReadNotify(on bool) bool { return !on }

// WriteNow is Write here: the portable engine's writes go through the
// connection's writer goroutine.
func (c *Conn) WriteNow(p []byte) error { return c.Write(p) }

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
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok {
		return ErrClosed
	}
	return cw.CloseWrite()
}

// PauseRead stops reading from the connection until ResumeRead. The reader
// goroutine may already hold one chunk; it is kept, not delivered, until then.
func (c *Conn) PauseRead() { c.flags |= fPaused }

// Unread reports how many unconsumed input bytes the engine holds for the connection.
func (c *Conn) Unread() int { return len(c.in) }

// Abort closes the connection at once with a TCP reset (SO_LINGER 0), discarding
// queued output; err is reported to OnClose.
func (c *Conn) Abort(err error) {
	if tc, ok := c.nc.(*net.TCPConn); ok && c.flags&fClosed == 0 {
		tc.SetLinger(0)
	}
	c.loop.closeConn(c, err)
}

// segFile is what a file or pipe segment sends from: the engine's duplicate of the
// caller's descriptor.
type segFile = *os.File

// outq is a connection's output queue; owned by the loop, recycled when empty.
type outq struct {
	segs     []seg
	mem      int   // bytes of memory queued, including the batch being written
	busy     int   // leading segments handed to the writer goroutine; they must not change
	err      error // the error that broke the connection (fBroken)
	progress int64 // loop time of the queue's creation or of the last completed batch
	wt       Timer // the write timeout's timer (SetWriteTimeout); armed only while output waits
}

// appendMem copies p into pooled buffers at the end of the queue. It fills the
// spare capacity of the last buffer unless a writer goroutine is sending it.
func (q *outq) appendMem(l *Loop, p []byte) {
	q.mem += len(p)
	if n := len(q.segs); n > q.busy {
		t := &q.segs[n-1]
		if t.buf != nil && t.release == nil && cap(t.buf) > len(t.buf) {
			k := copy(t.buf[len(t.buf):cap(t.buf)], p)
			t.buf = t.buf[:len(t.buf)+k]
			p = p[k:]
		}
	}
	for len(p) > 0 {
		size := min(max(len(p), 4096), 64<<10)
		b := l.cache.Get(size)[:0]
		k := copy(b[:cap(b)], p)
		q.segs = append(q.segs, seg{buf: b[:k]})
		p = p[k:]
	}
}

// appendRef queues the caller's bytes b, not copied, released by release.
func (q *outq) appendRef(b []byte, release func()) {
	q.mem += len(b)
	q.segs = append(q.segs, seg{buf: b, release: release})
}

// sendNow starts sending queued output from inside Write, to bound memory: it hands a
// batch to a writer goroutine and calls no handler.
func (l *Loop) sendNow(c *Conn) error {
	l.startWrite(c)
	return nil
}

// lastProgress is the time of the last byte sent for c: the later of the loop's
// record and what a writer goroutine has reported while it is still busy.
func (l *Loop) lastProgress(c *Conn, q *outq) int64 { return max(q.progress, c.wprog.Load()) }

// progressWriter is the writer goroutines' view of a connection: it writes in
// pieces of at most progressChunk bytes and records the time after each, so that a
// peer that reads slowly but steadily is seen to make progress within a batch.
type progressWriter struct{ c *Conn }

const progressChunk = 16 << 10

func (w progressWriter) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		k, err := w.c.nc.Write(p[:min(len(p), progressChunk)])
		if k > 0 {
			total += k
			w.c.wprog.Store(time.Now().UnixNano())
		}
		if err != nil {
			return total, err
		}
		p = p[k:]
	}
	return total, nil
}

// rawFD returns the descriptor behind c (a SOCKET handle on Windows), or -1.
func rawFD(c any) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(s uintptr) { fd = int(s) }) != nil {
		return -1
	}
	return fd
}
