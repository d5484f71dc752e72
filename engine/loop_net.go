//go:build !linux || galenet

package engine

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/gale-server/gale/internal/os/pool"
)

const (
	readBufSize   = 32 << 10 // a busy connection's reader buffer (one chunk posted at a time)
	idleReadSize  = 2 << 10  // an idle connection's reader buffer
	maxRetained   = 96 << 10 // unconsumed input a connection may leave behind
	acceptBackoff = 100 * time.Millisecond
	lingerTimeout = 2 * time.Second
	sendfileChunk = 4 << 20 // file bytes per writer batch, so progress is reported
	maxIovecs     = 64      // memory segments per writer batch
)

// loopSys is the portable engine's part of a Loop.
type loopSys struct {
	conns map[*Conn]struct{} // owned by the loop
	buf   []byte             // owned by the loop: retained input followed by a new chunk, for dispatch
	wake  chan struct{}      // capacity 1: a closure has been posted
}

// Post runs f on the loop as soon as possible. It is safe from any goroutine and is
// the only way for other goroutines to reach the loop's connections. Closures posted
// after the loop has stopped are dropped.
func (l *Loop) Post(f func()) { l.post(f) }

// YieldBeforeWait does nothing in the portable engine: its loop runs posted
// closures as they come, with no eventfd to spare (see the epoll engine's
// YieldBeforeWait for the contract).
func (l *Loop) YieldBeforeWait() {}

// post is Post reporting whether f was queued (false once the loop has stopped).
func (l *Loop) post(f func()) bool {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	l.tasks = append(l.tasks, f)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true
}

func (l *Loop) run() {
	defer close(l.done)
	l.tick()
	l.wheel.init(l.nowNano)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for !l.stop {
		wait := l.wheel.nextWaitMillis(l.nowNano)
		if len(l.pending) > 0 || len(l.dirty) > 0 {
			wait = 0
		}
		switch {
		case wait < 0:
			<-l.wake
		case wait > 0:
			timer.Reset(time.Duration(wait) * time.Millisecond)
			select {
			case <-l.wake:
			case <-timer.C:
			}
			timer.Stop()
		}
		l.tick()
		l.runTasks()
		l.endIteration()
	}
	l.closeAll(ErrShutdown)
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.runTasks() // closures posted before the loop stopped; new connections are refused
}

// addConn registers an accepted connection with the loop and starts its reader.
func (l *Loop) addConn(nc net.Conn, h Handler) {
	if l.drain || l.stop {
		nc.Close()
		return
	}
	c := &Conn{connSys: connSys{nc: nc, fd: rawFD(nc), h: h, rgo: make(chan struct{}, 1)}, loop: l}
	l.conns[c] = struct{}{}
	l.nconns++
	l.stats.active.Add(1)
	l.stats.accepted.Add(1)
	h.OnOpen(c)
	if c.flags&fClosed == 0 {
		go l.readLoop(c)
	}
}

// readLoop is a connection's reader goroutine. It posts every chunk it reads to the
// loop and waits for the loop's permission (c.rgo) before it reuses its buffer, so a
// connection never has more than one unconsumed chunk in flight: a paused
// connection stops being read, and TCP flow control pushes back on the peer. It ends
// at the first error (io.EOF included), which it posts too, or when the connection
// closes.
//
// An idle connection waits with a small buffer; a read that fills it switches to a
// readBufSize buffer until a read comes back short again.
func (l *Loop) readLoop(c *Conn) {
	buf := pool.Get(idleReadSize)
	defer func() { pool.Put(buf) }()
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			data := buf[:n]
			if !l.post(func() { l.received(c, data) }) {
				return
			}
			if _, ok := <-c.rgo; !ok {
				return
			}
			switch {
			case n == len(buf) && len(buf) == idleReadSize: // more is probably waiting
				pool.Put(buf)
				buf = pool.Get(readBufSize)
			case n < len(buf) && len(buf) == readBufSize: // caught up
				pool.Put(buf)
				buf = pool.Get(idleReadSize)
			}
		}
		if err != nil {
			l.post(func() { l.readFailed(c, err) })
			return
		}
	}
}

// received takes a chunk from the reader goroutine: it is delivered now, kept until
// reading resumes, or (while lingering) dropped.
func (l *Loop) received(c *Conn, data []byte) {
	if c.flags&fClosed != 0 {
		return // the reader has been released by the close
	}
	l.stats.bytesIn.Add(uint64(len(data)))
	switch {
	case c.flags&fLinger != 0:
		c.rgo <- struct{}{}
	case c.flags&(fPaused|fHiPaused) != 0:
		c.held = data
	default:
		l.deliver(c, data)
	}
}

// deliver passes retained input followed by data (a chunk in the reader's buffer) to
// the handler, then lets the reader reuse its buffer.
func (l *Loop) deliver(c *Conn, data []byte) {
	if len(c.in) > 0 {
		k := copy(l.buf, c.in)
		k += copy(l.buf[k:], data)
		data = l.buf[:k]
	}
	l.dispatch(c, data)
	if c.flags&fClosed == 0 {
		l.letRead(c)
	}
}

// letRead lets the reader reuse its buffer for the next chunk, unless the input
// retained by a paused handler has reached maxRetained: then the permission waits
// (rwait) until a later dispatch has consumed some, so that retained input and
// one chunk always fit in l.buf (a handler paused after every small part of its
// input, such as a TLS layer whose protocol stops at the high-water mark after
// each record, would otherwise see its retained input grow by a chunk per resume).
func (l *Loop) letRead(c *Conn) {
	if len(c.in) >= maxRetained {
		c.rwait = true
		return
	}
	c.rwait = false
	c.rgo <- struct{}{}
}

// readFailed handles the reader's last result: EOF or an error.
func (l *Loop) readFailed(c *Conn, err error) {
	if c.flags&fClosed != 0 {
		return
	}
	if c.flags&fBroken != 0 && c.out != nil {
		l.closeConn(c, c.out.err) // the write error that broke it (written)
		return
	}
	if c.flags&fLinger != 0 {
		l.closeConn(c, nil)
		return
	}
	if errors.Is(err, io.EOF) {
		if c.flags&fEOF == 0 {
			c.flags |= fEOF
			c.h.OnEOF(c)
		}
		return
	}
	l.closeConn(c, err)
}

// retain keeps rest as the connection's unconsumed input, in a pooled buffer. rest
// never aliases c.in.
func (l *Loop) retain(c *Conn, rest []byte) {
	if cap(c.in) < len(rest) {
		l.dropInput(c)
		c.in = l.cache.Get(len(rest))
	}
	c.in = c.in[:len(rest)]
	copy(c.in, rest)
}

// dropInput releases a connection's retained input buffer.
func (l *Loop) dropInput(c *Conn) {
	if c.in != nil {
		l.cache.Put(c.in)
		c.in = nil
	}
}

// runPending re-dispatches retained input of resumed connections, together with a
// chunk the reader brought while they were paused, then lets a ResumeHandler
// deliver what it holds.
func (l *Loop) runPending() {
	for i := 0; i < len(l.pending); i++ {
		c := l.pending[i]
		l.pending[i] = nil
		c.flags &^= fPending
		if c.flags&(fClosed|fBroken|fPaused|fHiPaused) != 0 {
			continue
		}
		if h := c.held; h != nil {
			c.held = nil
			l.deliver(c, h)
		} else if len(c.in) > 0 {
			k := copy(l.buf, c.in)
			l.dispatch(c, l.buf[:k])
		}
		if c.rwait && c.flags&fClosed == 0 {
			l.letRead(c)
		}
		l.resumed(c)
	}
	l.pending = l.pending[:0]
}

// eachConn calls f for every open connection of the loop.
func (l *Loop) eachConn(f func(*Conn)) {
	for c := range l.conns {
		f(c)
	}
}

// closeConn closes c once: it releases buffers and queued file segments, removes the
// timer, closes the socket (which ends the reader and any writer goroutine) and
// tells the handler.
func (l *Loop) closeConn(c *Conn, err error) {
	if c.flags&fClosed != 0 {
		return
	}
	c.flags |= fClosed
	l.wheel.remove(c)
	l.dropInput(c)
	unsent := c.QueuedBytes()
	c.held = nil
	if q := c.out; q != nil {
		for i := range q.segs {
			s := &q.segs[i]
			if s.buf != nil && s.release == nil && i >= q.busy {
				l.cache.Put(s.buf) // a batch being written is left to the GC
			}
			if s.file != nil {
				s.file.Close()
			}
			if s.release != nil {
				s.release()
			}
		}
		l.putOutq(q)
		c.out = nil
	}
	delete(l.conns, c)
	close(c.rgo)
	if c.nc != nil {
		c.nc.Close()
	}
	l.nconns--
	if c.flags&fDialed == 0 {
		l.stats.active.Add(-1)
		l.stats.closed.Add(1)
	}
	prev, prevUnsent := l.closing, l.unsent // an OnClose may close another connection
	l.closing, l.unsent = c, unsent
	c.h.OnClose(c, err)
	l.closing, l.unsent = prev, prevUnsent
}

func (l *Loop) closeAll(err error) {
	l.eachConn(func(c *Conn) { l.closeConn(c, err) })
}

func (l *Loop) putOutq(q *outq) {
	clear(q.segs)
	q.segs = q.segs[:0]
	q.mem, q.busy, q.err = 0, 0, nil
	l.wheel.removeTimer(&q.wt)
	q.wt.c = nil
	if cap(q.segs) <= 16 && len(l.outqs) < 1024 {
		l.outqs = append(l.outqs, q)
	}
}

// flush starts sending queued output, then applies the consequences: closing a
// broken connection, backpressure, OnDrain, close-after-flush.
func (l *Loop) flush(c *Conn) {
	if c.flags&fBroken != 0 {
		l.closeConn(c, c.out.err)
		return
	}
	l.startWrite(c)
	l.afterFlush(c)
}

// linger shuts down the write side of a flushed connection and discards input until
// the peer closes or lingerTimeout passes.
func (l *Loop) linger(c *Conn) {
	c.flags |= fLinger
	l.dropInput(c)
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil || c.flags&fEOF != 0 {
		l.closeConn(c, nil)
		return
	}
	l.wheel.add(c, l.nowNano+int64(lingerTimeout))
	if c.held != nil || c.rwait {
		c.held, c.rwait = nil, false
		c.rgo <- struct{}{}
	}
}

// closeFlushed closes a connection whose output has all gone (CloseAfterFlush
// without linger).
func (l *Loop) closeFlushed(c *Conn) { l.closeConn(c, nil) }

// drop shuts down the write side of a flushed connection and closes it without
// reading what the peer still sends (DropAfterFlush).
func (l *Loop) drop(c *Conn) {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite() // closing anyway; a failure changes nothing
	}
	l.closeConn(c, nil)
}

// writeJob is one batch of output handed to a writer goroutine: memory buffers or a
// range of a file.
type writeJob struct {
	track bool // report progress piece by piece (a write timeout is set)
	bufs  net.Buffers
	file  *os.File
	pipe  bool // file is a pipe: read on from where it is, not at off
	off   int64
	n     int64
}

// startWrite hands the head of c's queue to a writer goroutine unless one is busy.
// It calls no handler and closes nothing, so it is safe inside Conn.Write.
func (l *Loop) startWrite(c *Conn) {
	q := c.out
	if q == nil || len(q.segs) == 0 || c.flags&(fClosed|fBroken|fWriting|fConnecting) != 0 {
		return
	}
	var w writeJob
	if s := &q.segs[0]; s.file != nil {
		w = writeJob{file: s.file, pipe: s.pipe, off: s.foff, n: min(s.fn, sendfileChunk)}
		q.busy = 1
	} else {
		for i := range q.segs {
			t := &q.segs[i]
			if t.file != nil || len(w.bufs) == maxIovecs {
				break
			}
			w.bufs = append(w.bufs, t.buf[t.off:])
			q.busy++
		}
	}
	w.track = c.wto != 0
	c.flags |= fWriting
	go l.write(c, w)
}

// write is a writer goroutine: it sends one batch and posts the result. It reads
// only the batch, which the loop leaves untouched until the result arrives (or, if
// the connection closes first, for good).
func (l *Loop) write(c *Conn, w writeJob) {
	var n int64
	var err error
	if w.file != nil {
		var dst io.Writer = c.nc
		if w.track {
			dst = progressWriter{c}
		}
		var src io.Reader = io.NewSectionReader(w.file, w.off, w.n)
		short := ErrFileShrank
		if w.pipe {
			src, short = io.LimitReader(w.file, w.n), ErrPipeShort
		}
		n, err = io.Copy(dst, src)
		if err == nil && n < w.n {
			err = short
		}
	} else {
		if w.track {
			n, err = w.bufs.WriteTo(progressWriter{c})
		} else {
			n, err = w.bufs.WriteTo(c.nc)
		}
	}
	l.post(func() { l.written(c, n, err) })
}

// written takes a writer goroutine's result: it removes what was sent from the
// queue, then closes on error or flushes on.
func (l *Loop) written(c *Conn, n int64, err error) {
	c.flags &^= fWriting
	if c.flags&fClosed != 0 {
		return
	}
	q := c.out
	l.stats.bytesOut.Add(uint64(n))
	if n > 0 {
		q.progress = l.nowNano
	}
	if s := &q.segs[0]; s.file != nil {
		s.foff += n
		s.fn -= n
		if s.fn == 0 {
			l.popSeg(q)
		}
	} else {
		q.mem -= int(n)
		for n > 0 {
			t := &q.segs[0]
			left := int64(len(t.buf) - t.off)
			if n < left {
				t.off += int(n)
				break
			}
			n -= left
			l.popSeg(q)
		}
	}
	q.busy = 0
	if err != nil {
		if c.flags&(fOwnPacing|fPaused|fEOF) == fOwnPacing && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			// A connection whose reading does not depend on its output (relays, the
			// proxy's upstream connections) keeps reading after the peer's reset:
			// what it sent before it (an origin's 413 for an upload it did not
			// read) reaches the handler, and the reader's end, which the reset
			// brings, closes it with err (readFailed), as writeFailed does on epoll.
			// (With the end already read, nothing more comes: it closes now.)
			q.err = err
			c.flags |= fBroken
			return
		}
		l.closeConn(c, err)
		return
	}
	l.flush(c)
}

func (l *Loop) popSeg(q *outq) {
	s := q.segs[0]
	if s.buf != nil && s.release == nil {
		l.cache.Put(s.buf)
	}
	if s.file != nil {
		s.file.Close()
	}
	if s.release != nil {
		s.release()
	}
	copy(q.segs, q.segs[1:])
	q.segs[len(q.segs)-1] = seg{}
	q.segs = q.segs[:len(q.segs)-1]
}
