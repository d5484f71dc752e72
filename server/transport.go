package server

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/gale-server/gale/engine"
)

// Transport is the contract of the byte stream an HTTP/1 response is written to. On
// a plain TCP connection it is the engine connection itself; on a stream that cannot
// sendfile (TLS) it is a FilePump over that stream's Stream. Ctx writes to the two
// through concrete calls, not through this interface: an interface call makes every
// byte slice passed to Write escape to the heap, which costs an allocation per
// request on the hot path. Every method runs on the connection's loop.
type Transport interface {
	// Write queues p (copied) after everything queued before.
	Write(p []byte) error
	// SendFile queues n bytes of file fd from off after everything queued before;
	// release (may be nil) runs once when they were sent or the stream closed.
	SendFile(fd int, off, n int64, release func()) error
	// Buffered reports the bytes queued and not yet taken by the peer, including
	// file bytes not yet read.
	Buffered() int
	// Closed reports whether the stream has gone.
	Closed() bool
}

// Stream is the lower side a FilePump writes to: a byte stream that takes memory
// only (a TLS record layer over an engine connection, or the connection itself).
type Stream interface {
	Write(p []byte) error
	Buffered() int
	Closed() bool
	// WantDrain asks for one OnDrain (which must call FilePump.Drained) once the
	// queued output has fallen to the low-water mark.
	WantDrain()
}

var (
	_ Transport = (*engine.Conn)(nil)
	_ Transport = (*FilePump)(nil)
	_ Stream    = (*engine.Conn)(nil)
)

// PumpChunk is the size of one file read of a FilePump; a pump keeps its stream
// filled to fill bytes (see NewFilePump) and reads on when it drains.
const PumpChunk = 64 << 10

var pumpBufs = sync.Pool{New: func() any { b := make([]byte, PumpChunk); return &b }}

// ErrFileShrank is the connection-level error of a FilePump whose file ended before
// the promised bytes: the response cannot be completed, so the connection closes.
var ErrFileShrank = errors.New("server: file ended before the bytes promised to the client")

// FilePump is a Transport over a Stream that cannot send files by reference: file
// ranges are read with pread(2) in PumpChunk pieces, each written to the stream
// only while its queued output is below fill, and resumed from Drained. Writes
// queued behind a file wait for it, so order is kept. It is owned by the
// connection's loop.
type FilePump struct {
	s      Stream
	fill   int
	fail   func(err error) // closes the connection when a file read fails
	q      []pumpItem
	queued int64  // bytes in q
	done   func() // runs once when q empties (a close that waits for the output)
	// Read counts the file bytes read and written to the stream (may be nil); the
	// server points it at a per-loop counter (Stats.FileReadBytes).
	Read *atomic.Uint64
}

type pumpItem struct {
	mem     []byte // a write queued behind a file (owned copy), or nil
	fd      int
	off, n  int64
	release func()
}

// NewFilePump returns a pump over s that keeps up to fill bytes queued in s; fail is
// called with the error when a file read fails or comes up short.
func NewFilePump(s Stream, fill int, fail func(err error)) *FilePump {
	return &FilePump{s: s, fill: max(fill, PumpChunk), fail: fail}
}

// Write writes b now, or queues a copy behind pending file bytes. b is copied
// through a pooled buffer before it reaches the Stream, so it does not escape.
func (p *FilePump) Write(b []byte) error {
	if len(p.q) == 0 {
		bp := pumpBufs.Get().(*[]byte)
		var err error
		for len(b) > 0 && err == nil {
			k := copy(*bp, b)
			err = p.s.Write((*bp)[:k])
			b = b[k:]
		}
		pumpBufs.Put(bp)
		return err
	}
	if p.s.Closed() {
		return ErrConnClosed
	}
	p.q = append(p.q, pumpItem{mem: append([]byte(nil), b...)})
	p.queued += int64(len(b))
	return nil
}

// SendFile queues a file range and starts reading it.
func (p *FilePump) SendFile(fd int, off, n int64, release func()) error {
	if p.s.Closed() {
		if release != nil {
			release()
		}
		return ErrConnClosed
	}
	if n <= 0 {
		if release != nil {
			release()
		}
		return nil
	}
	p.q = append(p.q, pumpItem{fd: fd, off: off, n: n, release: release})
	p.queued += n
	p.pump()
	return nil
}

// Buffered reports the stream's queued bytes plus those still waiting in the pump.
func (p *FilePump) Buffered() int { return p.s.Buffered() + int(p.queued) }

// Closed reports whether the stream has gone.
func (p *FilePump) Closed() bool { return p.s.Closed() }

// Pending reports whether bytes wait in the pump.
func (p *FilePump) Pending() bool { return len(p.q) > 0 }

// Drained continues after the stream's output fell to its low-water mark.
func (p *FilePump) Drained() { p.pump() }

// WhenDone runs f once the pump is empty: at once if it is.
func (p *FilePump) WhenDone(f func()) {
	if len(p.q) == 0 {
		f()
		return
	}
	p.done = f
}

// Abort releases every pending file without sending it (the stream closed).
func (p *FilePump) Abort() {
	for i := range p.q {
		if r := p.q[i].release; r != nil {
			r()
		}
		p.q[i] = pumpItem{}
	}
	p.q, p.queued, p.done = p.q[:0], 0, nil
}

// pump moves queued items into the stream until it holds fill bytes.
func (p *FilePump) pump() {
	for len(p.q) > 0 {
		if p.s.Closed() {
			p.Abort()
			return
		}
		if p.s.Buffered() >= p.fill {
			p.s.WantDrain()
			return
		}
		it := &p.q[0]
		if it.mem != nil {
			p.s.Write(it.mem)
			p.queued -= int64(len(it.mem))
			p.pop()
			continue
		}
		bp := pumpBufs.Get().(*[]byte)
		k, err := preadFull(it.fd, (*bp)[:min(it.n, PumpChunk)], it.off)
		if err == nil && k == 0 {
			err = ErrFileShrank
		}
		if k > 0 {
			p.s.Write((*bp)[:k])
		}
		pumpBufs.Put(bp)
		if err != nil {
			p.Abort()
			p.fail(err)
			return
		}
		if p.Read != nil {
			p.Read.Add(uint64(k))
		}
		it.off += int64(k)
		it.n -= int64(k)
		p.queued -= int64(k)
		if it.n == 0 {
			if it.release != nil {
				it.release()
			}
			p.pop()
		}
	}
	if f := p.done; f != nil {
		p.done = nil
		f()
	}
}

func (p *FilePump) pop() {
	p.q[0] = pumpItem{}
	p.q = p.q[1:]
	if len(p.q) == 0 {
		p.q = nil
	}
}

// preadFull reads into b from off until b is full or the file ends (k < len(b), nil
// error at end of file).
func preadFull(fd int, b []byte, off int64) (int, error) {
	k := 0
	for k < len(b) {
		m, err := pread(fd, b[k:], off+int64(k))
		if err != nil {
			return k, err
		}
		if m == 0 {
			return k, nil
		}
		k += m
	}
	return k, nil
}

// pump returns cn's file pump, nil when the connection sends files itself.
func (cn *conn) pump() *FilePump {
	if cn.pumped {
		return cn.ls.pumps[cn]
	}
	return nil
}

// write sends response bytes: to the engine connection, or through the pump.
func (c *Ctx) write(p []byte) error {
	if c.pump != nil {
		return c.pump.Write(p)
	}
	return c.ec.Write(p)
}

// sendFile sends file bytes: with sendfile(2), or read by the pump.
func (c *Ctx) sendFile(fd int, off, n int64, release func()) {
	if c.pump != nil {
		c.pump.SendFile(fd, off, n, release)
		return
	}
	c.ec.SendFile(fd, off, n, release)
}

// openPump gives cn a FilePump over s, ec itself or its Layer (for a stream that cannot sendfile). The pump
// keeps the low-water mark plus one chunk queued, below the high-water mark.
func (cn *conn) openPump(ec *engine.Conn, s Stream) {
	ls := cn.ls
	if ls.pumps == nil {
		ls.pumps = map[*conn]*FilePump{}
	}
	p := NewFilePump(s, ls.srv.eng.LowWater()+PumpChunk, ec.Close)
	p.Read = &ls.fileReadBytes
	ls.pumps[cn] = p
	cn.pumped = true
}

// pumpDrained feeds cn's pump after its output drained and reports whether file
// bytes still wait in it.
func (cn *conn) pumpDrained() bool {
	p := cn.ls.pumps[cn]
	p.Drained()
	return p.Pending()
}

// closePump releases cn's pump and the files it still holds.
func (cn *conn) closePump() {
	cn.ls.pumps[cn].Abort()
	delete(cn.ls.pumps, cn)
	cn.pumped = false
}

// pumpPending reports whether the connection's file pump still holds output.
func (cn *conn) pumpPending() bool { return cn.pumped && cn.ls.pumps[cn].Pending() }

// closeAfterOutput closes ec once every queued byte was written, the pump's included;
// bodyLeft lingers so that an unread request body does not turn the close into a
// reset. The connection's timer stops at once, as in closeFlushed, so that it cannot
// cut the output while the pump still reads a file into it.
func (cn *conn) closeAfterOutput(ec *engine.Conn, bodyLeft bool) {
	if cn.pumped {
		if p := cn.ls.pumps[cn]; p.Pending() {
			ec.CancelTimeout()
			p.WhenDone(func() { cn.closeFlushed(ec, bodyLeft) })
			return
		}
	}
	cn.closeFlushed(ec, bodyLeft)
}

// closeFlushed closes ec once its output is sent, lingering when the client may
// still be sending a body nobody read; a layer first ends its own output. The
// connection's own timer is stopped: it timed a phase (head, body, idle) that is
// over, and firing while the output is still going out it would close the connection
// at once and cut the response (a download after an unread body). The write timeout
// bounds the output, and the engine bounds the linger.
func (cn *conn) closeFlushed(ec *engine.Conn, linger bool) {
	ec.CancelTimeout()
	if l := cn.lower(); l != nil {
		l.CloseNotify()
	}
	ec.CloseAfterFlush(linger)
}
