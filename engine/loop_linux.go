//go:build linux && !galenet

package engine

import (
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/gale-server/gale/internal/os/poll"
	"github.com/gale-server/gale/internal/os/sys"
	"golang.org/x/sys/unix"
)

// Tags stored in the epoll event's Pad word tell what kind of descriptor fired.
const (
	tagConn     = 0
	tagWake     = poll.WakeTag
	tagListener = 2 // plus the listener's index in the loop
)

const (
	readBufSize   = 128 << 10 // the loop's shared read buffer
	maxRetained   = 96 << 10  // unconsumed input a connection may leave behind
	acceptBatch   = 128       // accepts per readiness event, for fairness
	acceptBackoff = 100 * time.Millisecond
	lingerTimeout = 2 * time.Second
	sendfileChunk = 4 << 20 // bytes per sendfile call before yielding to other connections
	maxIovecs     = 64
	connEvents    = poll.In | poll.Out | poll.RDHup | poll.ET
)

// loopSys is the epoll engine's part of a Loop; owned by the loop's goroutine.
type loopSys struct {
	cpu      int // CPU to pin to, or -1
	poller   *poll.Poller
	handlers handlerTable
	peerBuf  unix.RawSockaddrAny      // accept4's address buffer
	peers6   map[*Conn]netip.AddrPort // peers of the loop's connections that are not IPv4 (fPeer6)
	holders  []*[]byte                // free input holders
	lsocks   []*lsock
	buf      []byte
	bufNUMA  bool // buf comes from numa.Alloc and is released with numa.Free
	iov      []unix.Iovec
	ur       *uloop // the io_uring backend's state; nil when the loop runs epoll
	zc       zcLoop // MSG_ZEROCOPY state (zerocopy_linux.go)
}

// lsock is one listening socket owned by a loop.
type lsock struct {
	fd     int
	h      Handler
	hidx   uint16
	tag    int32
	paused bool
	closed bool
	armed  bool // io_uring: a multishot accept is in flight
	// deferred says the socket has TCP_DEFER_ACCEPT: a connection usually comes with
	// its first bytes, so the epoll loop reads at once instead of waiting for the
	// readiness event.
	deferred bool
}

// Post runs f on the loop as soon as possible. It is safe from any goroutine and is
// the only way for other goroutines to reach the loop's connections. Closures posted
// after the loop has stopped are dropped.
//
// The wake-up is written while mu is held: the loop marks itself stopped under mu
// before it closes its poller, so no Post can write to the eventfd's descriptor
// number after the close (when the number may belong to another file). Only the
// first Post after a drain writes; the others cost one atomic operation.
func (l *Loop) Post(f func()) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.tasks = append(l.tasks, f)
	l.poller.Wake()
	l.mu.Unlock()
}

// YieldBeforeWait asks the loop, once it has handled this iteration's events, to
// give its goroutine to the Go scheduler (runtime.Gosched) before it waits for more,
// and to run what other goroutines posted meanwhile in the same iteration, without a
// wake-up through the eventfd. A handler calls it right after handing work to a
// goroutine that will post the result back soon (the net/http adapter does, for
// every request it hands to its pool): the goroutines readied by the loop run on
// the loop's own P first, so their results go out with this iteration's writes,
// and the loop neither sleeps nor is woken for them. A goroutine that blocks
// instead posts later and wakes the loop as usual. It does nothing on a loop locked
// to its OS thread (pinned, or io_uring), where a yield hands the goroutine between
// threads. Only the loop's goroutine calls it.
func (l *Loop) YieldBeforeWait() {
	if l.lockThread() {
		return
	}
	l.yield = true
}

// yieldToPosters runs at the end of an iteration in which YieldBeforeWait was
// called: it yields with the wake-up held (Posts write no eventfd meanwhile), runs
// the closures posted, then gives the wake-up back and runs what came in between.
func (l *Loop) yieldToPosters() {
	l.yield = false
	l.yields++
	held := l.poller.Hold()
	runtime.Gosched()
	l.runTasks()
	if held {
		l.poller.Drained()
		l.mu.Lock()
		more := len(l.tasks) > 0
		l.mu.Unlock()
		if more {
			l.runTasks()
		}
	}
}

// release marks the loop stopped (new closures are dropped), runs the closures
// posted before that and closes the poller and the read buffer.
func (l *Loop) release() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.runTasks()
	l.zcShutdown()
	l.poller.Close()
	l.freeReadBuf()
}

// yieldEvery is how often a loop gives its goroutine back to the Go scheduler
// (runtime.Gosched). The runtime's sysmon treats a goroutine that has not been
// rescheduled for 10 ms as a hog: it preempts it with a signal, or, if it sits in
// epoll_wait or io_uring_enter just then, takes its P away, and keeps polling
// every 20 µs while it does so. A loop never parks in the scheduler, so without
// this it pays for that every 10 ms. A Gosched of an unlocked goroutine costs
// well under a microsecond; a locked one (pinned, or io_uring) is handed between
// two threads (four futex calls, two context switches), 200 times a second,
// which is still far less than what it saves: sysmon's wake-ups during tiny-c64
// fell from 3,000-3,700 to 160-270 a second on io_uring and from 1,100-2,000 to
// 120-220 on a pinned epoll loop (bench/RESULTS.md). The interval only has to stay
// below sysmon's 10 ms (every sysmon look then sees a new schedule tick); 8 ms
// keeps 2 ms of margin. It was 5 ms, but a locked loop that waits often pays the
// hand-off at every one: in conn-rate on io_uring (loaded machine) the yields and
// the helper thread they wake were 7% of gale's CPU, ~5 µs per connection, and
// 8 ms cuts that by three eighths.
const yieldEvery = int64(8 * time.Millisecond)

// maybeYield calls runtime.Gosched when yieldEvery has passed since *last. An
// unlocked loop calls it at the end of an iteration; a locked one only when it
// is about to wait (nothing pending): its hand-off needs two other threads to be
// scheduled in turn, which on a busy machine can take milliseconds, and a loop
// with work ready would stand still meanwhile. A locked loop that never waits is
// preempted by sysmon instead (the same hand-off, at most every 10 ms).
func (l *Loop) maybeYield(last *int64) {
	if l.nowNano-*last >= yieldEvery {
		*last = l.nowNano
		runtime.Gosched()
	}
}

// lockThread reports whether the loop's goroutine is locked to its OS thread:
// when it is pinned to a CPU (the affinity belongs to the thread) and on the
// io_uring backend (the ring is single-issuer: only its creating thread may
// submit and wait). An unpinned epoll loop is not locked, so that its yields
// (see yieldEvery) stay on one thread.
func (l *Loop) lockThread() bool { return l.cpu >= 0 || l.ur != nil }

func (l *Loop) run() {
	defer close(l.done)
	locked := l.lockThread()
	if locked {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	if l.cpu >= 0 {
		if err := sys.SetAffinity(l.cpu); err != nil {
			l.eng.cfg.Logger.Warn("cpu pinning failed", "loop", l.id, "cpu", l.cpu, "err", err)
		}
	}
	l.tick()
	l.wheel.init(l.nowNano)
	if l.ur != nil {
		err := l.uStart()
		if err == nil {
			l.uRun()
			return
		}
		l.eng.cfg.Logger.Error("io_uring loop failed to start; this loop runs epoll", "loop", l.id, "err", err)
		l.ur = nil
		for _, ls := range l.lsocks {
			if !ls.closed {
				l.poller.Add(ls.fd, poll.In, ls.tag)
			}
		}
	}
	events := make([]unix.EpollEvent, 256)
	lastYield := l.nowNano
	for !l.stop {
		wait := l.wheel.nextWaitMillis(l.nowNano)
		if len(l.pending) > 0 || len(l.dirty) > 0 || l.yield {
			wait = 0
		}
		if locked && wait != 0 {
			l.maybeYield(&lastYield)
		}
		n, err := l.poller.Wait(events, wait)
		if err != nil {
			l.eng.cfg.Logger.Error("poll failed", "loop", l.id, "err", err)
			time.Sleep(10 * time.Millisecond)
		}
		l.tick()
		for i := 0; i < n; i++ {
			ev := &events[i]
			switch {
			case ev.Pad == tagConn:
				l.connEvent(int(ev.Fd), ev.Events)
			case ev.Pad == tagWake:
				l.poller.Drain()
				l.runTasks()
			default:
				l.accept(l.lsocks[ev.Pad-tagListener])
			}
		}
		if l.yield {
			l.yieldToPosters()
			lastYield = l.nowNano
		}
		l.endIteration()
		if !locked {
			l.maybeYield(&lastYield)
		}
	}
	l.closeAll(ErrShutdown)
	l.release()
}

func (l *Loop) connEvent(fd int, events uint32) {
	c := l.eng.table.get(fd)
	if c == nil {
		return
	}
	if events&poll.Err != 0 && c.flags&fZC != 0 {
		// Zero-copy completions wait on the error queue and raise EPOLLERR; only a
		// socket error that remains after them is one.
		if bad, err := l.zcEvent(c); bad {
			l.closeConn(c, err)
			return
		}
		events &^= poll.Err
	}
	if c.flags&fConnecting != 0 {
		if events&(poll.Out|poll.Hup|poll.Err) == 0 || !l.connected(c) {
			return
		}
	}
	if events&poll.Out != 0 && c.flags&fWaitOut != 0 {
		c.flags &^= fWaitOut
		l.flush(c)
	}
	if events&(poll.In|poll.RDHup|poll.Hup|poll.Err) != 0 && c.flags&fClosed == 0 {
		hup := events&(poll.RDHup|poll.Hup|poll.Err) != 0
		if c.flags&(fPaused|fHiPaused) != 0 && c.flags&fLinger == 0 {
			c.flags |= fReadPending
			if events&(poll.Hup|poll.Err) != 0 {
				// A reset or a socket error: nothing more to read. EPOLLHUP alone is
				// also what an orderly end of both directions reports (this side's
				// CloseWrite, then the peer's FIN), and then the bytes the peer sent
				// before its FIN are still in the socket: treated as a FIN below.
				if err := l.sockErr(c); err != nil || events&poll.Err != 0 {
					l.closeConn(c, err)
					return
				}
			}
			if events&(poll.RDHup|poll.Hup) != 0 && c.flags&fEOF == 0 && sys.SocketUnread(int(c.fd)) == 0 {
				// The peer half-closed while we are not reading, and sent nothing that
				// is still unread: tell the handler now (a request it is serving may be
				// abandoned). When bytes it sent before its FIN wait in the socket, the
				// end of stream is reported once reading resumes, after their OnData
				// (the read below finds it), as io_uring and the portable engine do: a
				// handler never learns of the end before bytes the peer sent earlier.
				c.flags |= fEOF
				c.handler().OnEOF(c)
			}
			return
		}
		l.read(c, hup)
	}
}

// sockErr fetches a pending socket error (SO_ERROR) for the close reason.
func (l *Loop) sockErr(c *Conn) error {
	v, err := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && v != 0 {
		return errnoErr("read", unix.Errno(v))
	}
	return nil
}

// read drains the socket into the shared buffer and hands the bytes to the handler.
// With edge-triggered polling a short read means the socket is empty, unless the
// peer has hung up (hup), in which case reading continues until EOF.
func (l *Loop) read(c *Conn, hup bool) {
	if l.ur != nil {
		l.uRead(c)
		return
	}
	for c.flags&(fClosed|fBroken) == 0 {
		if c.flags&fLinger != 0 {
			n, e := sys.Read(int(c.fd), l.buf)
			if e == unix.EAGAIN {
				return
			}
			if e != 0 || n == 0 {
				l.closeConn(c, nil)
				return
			}
			continue
		}
		if c.flags&(fPaused|fHiPaused) != 0 {
			c.flags |= fReadPending
			return
		}
		if c.flags&fReadNotify != 0 {
			c.flags &^= fReadPending
			if rh, ok := c.handler().(ReadNotifyHandler); ok {
				rh.OnReadable(c)
				if c.flags&(fPaused|fHiPaused) != 0 {
					c.flags |= fReadPending // it stopped early: notify again on resume
				}
				return
			}
			c.flags &^= fReadNotify // re-parented to a handler that reads through the engine
		}
		if in := c.input(); len(in) > maxRetained {
			// Left behind while paused: hand it over before reading more, so that the
			// read below always has room.
			l.dispatch(c, l.buf[:copy(l.buf, in)])
			continue
		}
		k := copy(l.buf, c.input())
		n, e := sys.Read(int(c.fd), l.buf[k:])
		if e == unix.EAGAIN {
			c.flags &^= fReadPending
			return
		}
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			l.closeConn(c, errnoErr("read", e))
			return
		}
		if n == 0 {
			c.flags &^= fReadPending
			if c.flags&fEOF == 0 {
				c.flags |= fEOF
				c.handler().OnEOF(c)
			}
			return
		}
		l.stats.bytesIn.Add(uint64(n))
		l.dispatch(c, l.buf[:k+n])
		if n < len(l.buf)-k && !hup {
			c.flags &^= fReadPending
			return
		}
	}
}

// retain keeps rest (which lives in the shared buffer) as the connection's
// unconsumed input, in a pooled buffer.
func (l *Loop) retain(c *Conn, rest []byte) {
	if c.in == nil {
		c.in = l.getHolder()
	}
	if cap(*c.in) < len(rest) {
		if *c.in != nil {
			l.cache.Put(*c.in)
		}
		*c.in = l.cache.Get(len(rest))
	}
	*c.in = (*c.in)[:copy((*c.in)[:len(rest)], rest)]
}

// dropInput releases a connection's retained input buffer.
func (l *Loop) dropInput(c *Conn) {
	if c.in == nil {
		return
	}
	if *c.in != nil {
		l.cache.Put(*c.in)
		*c.in = nil
	}
	if len(l.holders) < 1024 {
		l.holders = append(l.holders, c.in)
	}
	c.in = nil
}

// getHolder returns an empty input holder from the loop's free list.
func (l *Loop) getHolder() *[]byte {
	if n := len(l.holders); n > 0 {
		h := l.holders[n-1]
		l.holders = l.holders[:n-1]
		return h
	}
	return new([]byte)
}

// runPending re-dispatches retained input of resumed connections, lets a
// ResumeHandler deliver what it holds, and reads what the socket held while they
// were paused.
func (l *Loop) runPending() {
	for i := 0; i < len(l.pending); i++ {
		c := l.pending[i]
		l.pending[i] = nil
		c.flags &^= fPending
		if c.flags&(fClosed|fBroken|fPaused|fHiPaused) != 0 {
			continue
		}
		if in := c.input(); len(in) > 0 {
			c.flags &^= fUnseen
			data := l.joined(in, nil) // (io_uring may retain more than buf holds)
			// The bytes are handed over whole: while OnData runs the engine holds
			// none (Unread is 0, so SetReadNotify may turn on), and what it leaves
			// is kept again.
			l.dropInput(c)
			l.dispatch(c, data)
		}
		l.resumed(c)
		// fReadPending with fEOF: the peer's FIN came while reading was paused, and the
		// bytes it sent before the FIN are still in the socket.
		if c.flags&(fClosed|fPaused|fHiPaused) == 0 && c.flags&fReadPending != 0 {
			l.read(c, true)
		}
	}
	l.pending = l.pending[:0]
}

func (l *Loop) putOutq(q *outq) {
	for i := range q.segs {
		q.segs[i] = seg{}
	}
	q.segs = q.segs[:0]
	q.mem = 0
	q.err = nil
	l.wheel.removeTimer(&q.wt)
	q.wt.c = nil
	if cap(q.segs) <= 16 && len(l.outqs) < 1024 {
		l.outqs = append(l.outqs, q)
	}
}

// flush writes queued output until the socket refuses more, then applies the
// consequences: closing on error, backpressure, OnDrain, close-after-flush.
func (l *Loop) flush(c *Conn) {
	if err := l.writeOut(c); err != nil {
		l.writeFailed(c, err)
		return
	}
	if c.flags&fClosed != 0 {
		return
	}
	if c.flags&fBroken != 0 {
		l.writeFailed(c, c.out.err)
		return
	}
	l.afterFlush(c)
}

// writeFailed closes a connection whose output cannot be sent. On a connection
// whose reading does not depend on its output (SetOutputPausesRead(false): relays,
// and the proxy's upstream connections) the bytes the peer sent before the failure
// are handed to the handler first, unless it paused reading: a peer that answers
// and closes without reading all it was sent (an HTTP origin refusing an upload
// with 413) resets the connection, and its answer waits in the socket behind the
// reset. epoll reports the reset's EPOLLOUT together with the answer's EPOLLIN, and
// the flush comes first. (io_uring's receive completes when the answer arrives,
// before the send meets the reset.)
func (l *Loop) writeFailed(c *Conn, err error) {
	if l.ur == nil && c.flags&(fOwnPacing|fPaused|fLinger|fReadNotify|fConnecting|fClosed) == fOwnPacing {
		for c.flags&(fClosed|fPaused) == 0 {
			k := copy(l.buf, c.input())
			n, e := sys.Read(int(c.fd), l.buf[k:])
			if e == unix.EINTR {
				continue
			}
			if e != 0 || n == 0 {
				break
			}
			l.stats.bytesIn.Add(uint64(n))
			l.dispatch(c, l.buf[:k+n])
			if c.flags&fBroken != 0 {
				break // dispatch keeps no input of a broken connection: one read is all
			}
		}
	}
	l.closeConn(c, err)
}

// linger shuts down the write side of a flushed connection and discards input until
// the peer closes or lingerTimeout passes.
func (l *Loop) linger(c *Conn) {
	// Lingering, the engine reads (and discards) for itself, read notification or
	// not: io_uring's receive then finds the peer's end of stream.
	c.flags = (c.flags | fLinger) &^ fReadNotify
	if err := sys.ShutdownWrite(int(c.fd)); err != nil || c.flags&fEOF != 0 {
		l.closeConn(c, nil)
		return
	}
	l.wheel.add(c, l.nowNano+int64(lingerTimeout))
	l.read(c, false)
}

// closeFlushed closes a connection whose output has all gone (CloseAfterFlush
// without linger). If its last send held its final segment back (corkLast), the
// write side is shut down first: that sends the segment with the FIN, where a
// close(2) finding unread input in the socket would reset the connection and
// discard the segment instead.
func (l *Loop) closeFlushed(c *Conn) {
	if corkLast(c) {
		_ = sys.ShutdownWrite(int(c.fd)) // closing anyway; a failure changes nothing
	}
	l.closeConn(c, nil)
}

// drop shuts down the write side of a flushed connection (the FIN follows its last
// output) and closes it without reading what the peer still sends (DropAfterFlush).
func (l *Loop) drop(c *Conn) {
	_ = sys.ShutdownWrite(int(c.fd)) // closing anyway; a failure changes nothing
	l.closeConn(c, nil)
}

// writeOut sends queued output until the queue is empty or the socket is full. It
// calls no handler and closes nothing, so it is safe inside Conn.Write; it returns
// the error that should close the connection.
func (l *Loop) writeOut(c *Conn) error {
	if l.ur != nil {
		return l.uWriteOut(c)
	}
	fd := int(c.fd)
	sentFile := 0
	for q := c.out; q != nil && len(q.segs) > 0 && c.flags&(fClosed|fWaitOut|fBroken) == 0; {
		s := &q.segs[0]
		if s.buf == nil {
			if sentFile >= sendfileChunk {
				c.markDirty() // yield; continue next iteration
				break
			}
			full, err := l.sendFileSeg(c, q, &sentFile)
			if err != nil {
				return err
			}
			if full {
				c.flags |= fWaitOut
			}
			continue
		}
		if l.zcEligible(c, s) {
			done, err := l.zcSend(c, q)
			if err != nil {
				return err
			}
			if done {
				continue
			}
		}
		// Gather consecutive memory segments; hold the frame (MSG_MORE) if a file, or
		// a segment that goes with MSG_ZEROCOPY, follows.
		iov := l.iov[:0]
		flags := 0
		for i := range q.segs {
			t := &q.segs[i]
			if t.buf == nil || i > 0 && l.zcEligible(c, t) {
				flags = unix.MSG_MORE
				break
			}
			if len(iov) == maxIovecs {
				break
			}
			b := t.buf[t.off:]
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			iov = append(iov, v)
		}
		if len(iov) == len(q.segs) && corkLast(c) {
			flags = unix.MSG_MORE
		}
		l.iov = iov
		n, e := sys.Sendmsg(fd, iov, flags)
		switch {
		case e == unix.EAGAIN:
			c.flags |= fWaitOut
			continue
		case e == unix.EINTR:
			continue
		case e != 0:
			return errnoErr("sendmsg", e)
		}
		l.stats.bytesOut.Add(uint64(n))
		q.progress = l.nowNano
		q.mem -= n
		l.popSegs(q, q.sent(n))
	}
	return nil
}

// sendFileSeg sends what it may of the file or pipe segment at the front of q
// with sendfile(2) or splice(2), adding the bytes sent to sentFile; full reports a
// socket that took nothing (EAGAIN). Shared by the epoll and io_uring write paths.
func (l *Loop) sendFileSeg(c *Conn, q *outq, sentFile *int) (full bool, err error) {
	s := &q.segs[0]
	fd := int(c.fd)
	want := min(s.fn, sendfileChunk)
	var n int
	var e unix.Errno
	call, short := "sendfile", ErrFileShrank
	if s.pipe {
		call, short = "splice", ErrPipeShort
		n, e = sys.Splice(s.file, fd, int(want))
	} else {
		n, e = sys.Sendfile(fd, s.file, &s.foff, int(want))
	}
	switch {
	case e == unix.EAGAIN:
		return true, nil
	case e == unix.EINTR:
	case e != 0:
		return false, errnoErr(call, e)
	case n == 0:
		return false, short
	default:
		*sentFile += n
		q.progress = l.nowNano
		l.stats.bytesOut.Add(uint64(n))
		s.fn -= int64(n)
		if s.fn == 0 {
			l.popSeg(q)
		}
	}
	return false, nil
}

// sent records that the kernel took n bytes of memory segments from the front
// of q: a partly sent segment keeps its rest, and it returns how many segments
// went whole, for popSegs to drop with one move (a queue of many small
// references stays linear). Shared by the epoll and io_uring write paths.
func (q *outq) sent(n int) (whole int) {
	for n > 0 {
		t := &q.segs[whole]
		left := len(t.buf) - t.off
		if n < left {
			t.off += n
			break
		}
		n -= left
		whole++
	}
	return whole
}

// popSegs drops the first k segments like k calls of popSeg, moving the rest once.
func (l *Loop) popSegs(q *outq, k int) {
	for i := 0; i < k; i++ {
		s := &q.segs[i]
		if s.buf != nil && s.release == nil {
			l.cache.Put(s.buf)
		}
		if s.zc {
			l.zcHold(q.wt.c, s)
		} else if s.release != nil {
			s.release()
		}
	}
	n := copy(q.segs, q.segs[k:])
	clear(q.segs[n:])
	q.segs = q.segs[:n]
}

func (l *Loop) popSeg(q *outq) {
	s := q.segs[0]
	if s.buf != nil && s.release == nil {
		l.cache.Put(s.buf)
	}
	if s.zc {
		l.zcHold(q.wt.c, &s)
	} else if s.release != nil {
		s.release()
	}
	copy(q.segs, q.segs[1:])
	q.segs[len(q.segs)-1] = seg{}
	q.segs = q.segs[:len(q.segs)-1]
}

// closeConn closes c once: it releases buffers and queued file segments, removes the
// timer, closes the socket and tells the handler.
func (l *Loop) closeConn(c *Conn, err error) {
	if c.flags&fClosed != 0 {
		return
	}
	c.flags |= fClosed
	l.wheel.remove(c)
	l.dropInput(c)
	unsent := c.QueuedBytes()
	if q := c.out; q != nil && c.flags&fSend == 0 { // a send in flight keeps its segments (uFinalClose)
		l.popSegs(q, len(q.segs))
		l.putOutq(q)
		c.out = nil
	}
	if c.flags&fPeer6 != 0 {
		delete(l.peers6, c)
	}
	if c.flags&fUring != 0 {
		l.uCancel(c) // the socket closes once its io_uring requests have ended
	} else {
		fd := int(c.fd)
		if l.eng.table.get(fd) == c {
			l.eng.table.set(fd, nil)
		}
		if c.flags&fZC == 0 || !l.zcClose(c, fd) {
			sys.Close(fd)
		}
	}
	l.nconns--
	if c.flags&fDialed == 0 {
		l.stats.active.Add(-1)
		l.stats.closed.Add(1)
	}
	prev, prevUnsent := l.closing, l.unsent // an OnClose may close another connection
	l.closing, l.unsent = c, unsent
	c.handler().OnClose(c, err)
	l.closing, l.unsent = prev, prevUnsent
	l.handlers.release(c.hidx)
}

func (l *Loop) accept(ls *lsock) {
	if ls.closed || ls.paused {
		return
	}
	for i := 0; i < acceptBatch; i++ {
		fd, e := sys.AcceptPeer(ls.fd, &l.peerBuf)
		switch e {
		case 0:
		case unix.EAGAIN:
			return
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			// Out of descriptors or memory: stop accepting for a moment (level-triggered
			// polling would otherwise spin), keep serving open connections.
			l.stats.acceptPauses.Add(1)
			ls.paused = true
			l.poller.Mod(ls.fd, 0, ls.tag)
			l.After(acceptBackoff, func() {
				ls.paused = false
				if !ls.closed {
					l.poller.Mod(ls.fd, poll.In, ls.tag)
				}
			})
			return
		default:
			l.eng.cfg.Logger.Warn("accept failed", "loop", l.id, "err", errnoErr("accept4", e))
			return
		}
		if l.drain {
			sys.Close(fd)
			continue
		}
		if c := l.addConn(fd, ls.hidx, &l.peerBuf); c != nil && ls.deferred {
			l.read(c, false)
		}
	}
}

// addConn registers an accepted socket with the loop and opens it; peer is its
// address as accept(2) returned it, or nil when the accept gave none (io_uring), in
// which case addConn asks getpeername(2).
func (l *Loop) addConn(fd int, hidx uint16, peer *unix.RawSockaddrAny) *Conn {
	c, err := l.register(fd, hidx, flags0)
	if err != nil {
		l.eng.cfg.Logger.Warn("connection not registered", "err", err)
		return nil
	}
	if peer == nil && sys.PeerName(fd, &l.peerBuf) == 0 {
		// io_uring's multishot accept gives no address, and a peer that resets later
		// takes it with it (getpeername fails on a reset socket): ask now, so that
		// RemoteAddr costs nothing later and still answers in an access log line
		// written after a reset. If even this fails, RemoteAddr tries once more.
		peer = &l.peerBuf
	}
	if peer != nil {
		if a, p, ok := sys.PeerIPv4(peer); ok {
			c.peer4, c.peerPort = a, p
		} else if ap, ok := sys.PeerIPv6(peer); ok {
			c.setPeer(ap)
		}
	}
	l.handlers.retain(hidx)
	l.stats.accepted.Add(1)
	l.handlers.list[hidx].OnOpen(c)
	if l.ur != nil && c.flags&fClosed == 0 {
		// Armed only now: a receive queued before OnOpen would read the bytes a
		// handler that turns read notification on there means to read itself.
		l.uRegister(c)
	}
	return c
}

// flags0 is the flag word of a freshly registered connection.
const flags0 uint32 = 0

// register adds a connected or connecting socket to the loop's poller and the
// engine's table; on failure it closes fd.
func (l *Loop) register(fd int, hidx uint16, flags uint32) (*Conn, error) {
	if fd >= maxFDs {
		sys.Close(fd)
		return nil, fmt.Errorf("engine: descriptor %d above the engine's table", fd)
	}
	c := &Conn{connSys: connSys{fd: int32(fd), hidx: hidx}, loop: l, flags: flags}
	if l.ur != nil {
		if flags&fConnecting != 0 {
			l.uRegister(c) // an accepted socket's receive is armed after OnOpen
		}
	} else if err := l.poller.Add(fd, connEvents, tagConn); err != nil {
		sys.Close(fd)
		return nil, err
	}
	l.eng.table.set(fd, c)
	l.nconns++
	if flags&fDialed == 0 {
		l.stats.active.Add(1)
	}
	return c, nil
}

// eachConn calls f for every open connection of the loop (a scan of the engine's
// descriptor table: for shutdown, not for hot paths).
func (l *Loop) eachConn(f func(*Conn)) {
	l.eng.table.each(func(c *Conn) {
		if c.loop == l {
			f(c)
		}
	})
}

func (l *Loop) closeAll(err error) {
	l.eachConn(func(c *Conn) { l.closeConn(c, err) })
	l.closeListeners()
}

// closeListeners closes the loop's listening sockets. Each is removed from the
// poller first: after an upgrade another process holds a duplicate of the same
// socket, and epoll keeps reporting a socket until every descriptor of it is
// closed.
func (l *Loop) closeListeners() {
	for _, ls := range l.lsocks {
		if !ls.closed {
			ls.closed = true
			if l.ur != nil {
				l.uCloseListener(ls)
			} else {
				l.poller.Del(ls.fd)
			}
			sys.Close(ls.fd)
		}
	}
}

// corkLast reports whether the send of the last bytes queued on c should hold its
// final segment back (MSG_MORE) so that the FIN of the close that follows goes out
// in it: c closes once flushed (CloseAfterFlush), nothing asked to hear of the flush,
// and no zero-copy send is outstanding. Every path that ends such a connection
// (close, shutdown for linger or drop) pushes the held segment out with the FIN.
func corkLast(c *Conn) bool {
	return c.flags&(fCloseAfterFlush|fWantFlushed|fZC) == fCloseAfterFlush
}
