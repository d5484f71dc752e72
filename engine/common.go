package engine

import "time"

// The methods in this file are shared by the epoll engine and the portable
// fallback: they touch only fields that both define the same way.

// ID returns the loop's index, 0..Workers-1.
func (l *Loop) ID() int { return l.id }

// Engine returns the engine the loop belongs to.
func (l *Loop) Engine() *Engine { return l.eng }

// Now returns the loop's clock, read once per loop iteration.
func (l *Loop) Now() time.Time { return l.now }

// Stats returns a snapshot of the loop's counters.
func (l *Loop) Stats() Stats { return l.stats.snapshot() }

func (l *Loop) tick() {
	l.now = time.Now()
	l.nowNano = l.now.UnixNano()
}

func (l *Loop) runTasks() {
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = l.spare[:0]
	l.mu.Unlock()
	for i, f := range tasks {
		f()
		tasks[i] = nil
	}
	l.spare = tasks
}

// ResumeHandler is implemented by a Handler that holds input of its own between
// reads, such as a TLS layer whose record decoder took several records from one
// read and had delivered only some of them when reading paused. It is optional:
// the engine looks for it only when a connection is resumed. OnResume is called
// at the end of the loop iteration in which reading restarted, whatever restarted
// it (ResumeRead, or queued output falling to the low-water mark after the
// high-water mark stopped reading), after the engine has re-delivered the input
// it retained itself and before it reads the socket again; it is not called while
// the connection is paused or closed. OnResume must deliver what the handler holds
// (it may pause again), since no socket event may ever come to bring it out.
type ResumeHandler interface {
	OnResume(c *Conn)
}

// resumed calls the handler's OnResume (see ResumeHandler) when c is still open
// and reading after the engine's own re-delivery.
func (l *Loop) resumed(c *Conn) {
	if c.flags&(fClosed|fBroken|fPaused|fHiPaused) != 0 {
		return
	}
	if rh, ok := c.handler().(ResumeHandler); ok {
		rh.OnResume(c)
	}
}

// Defer runs f on the loop at the end of the current iteration, after every event and
// posted task of the iteration and before the connections' output is flushed. It must
// be called on the loop (from a handler, a posted task or a timer). It lets a handler
// gather work that many events of one iteration produce and hand it on once: pubsub
// posts a loop's drain task to the other loops once per iteration, after every message
// the iteration read is in their inboxes, not at the first one. A function deferred
// while the deferred ones run runs in the same pass.
func (l *Loop) Defer(f func()) { l.later = append(l.later, f) }

// runDeferred runs the functions of Defer.
func (l *Loop) runDeferred() {
	for i := 0; i < len(l.later); i++ {
		f := l.later[i]
		l.later[i] = nil
		f()
	}
	l.later = l.later[:0]
}

// schedule queues c for the resume pass at the end of this iteration.
func (l *Loop) schedule(c *Conn) {
	if c.flags&fPending == 0 {
		c.flags |= fPending
		l.pending = append(l.pending, c)
	}
}

func (l *Loop) getOutq() *outq {
	if n := len(l.outqs); n > 0 {
		q := l.outqs[n-1]
		l.outqs = l.outqs[:n-1]
		return q
	}
	q := &outq{}
	q.wt.loop = l
	return q
}

// Loop returns the loop that owns the connection.
func (c *Conn) Loop() *Loop { return c.loop }

// Context returns the value set with SetContext (the protocol's per-connection state).
func (c *Conn) Context() any { return c.ctx }

// SetContext stores the protocol's per-connection state.
func (c *Conn) SetContext(v any) { c.ctx = v }

// Closed reports whether the connection has been closed, or has failed and will be
// closed at the end of this loop iteration.
func (c *Conn) Closed() bool { return c.flags&(fClosed|fBroken) != 0 }

// ReadPaused reports whether reading is stopped: by PauseRead, by CloseAfterFlush,
// or because queued output is above the high-water mark. A protocol layer that
// holds decrypted input for another handler (TLS) delivers none of it meanwhile.
func (c *Conn) ReadPaused() bool { return c.flags&(fPaused|fHiPaused) != 0 }

// Pending reports whether any output, in memory or from files, is still queued.
func (c *Conn) Pending() bool { return c.out != nil && len(c.out.segs) > 0 }

// QueuedBytes reports how many bytes of output are still queued: memory (as
// Buffered) plus what remains of queued file segments.
func (c *Conn) QueuedBytes() int64 {
	q := c.out
	if q == nil {
		return 0
	}
	n := int64(q.mem)
	for i := range q.segs {
		n += q.segs[i].fn
	}
	return n
}

// Unsent reports, during OnClose, how many queued bytes (memory and files) the
// connection never handed to the kernel: what an aborted download did not deliver.
// At any other time it equals QueuedBytes.
func (c *Conn) Unsent() int64 {
	if l := c.loop; l.closing == c {
		return l.unsent
	}
	return c.QueuedBytes()
}

// FlushHandler is implemented by a Handler that uses WantFlushed. It is optional:
// the engine looks for it only when a flush it was asked about completes.
type FlushHandler interface {
	// OnFlushed is called once after WantFlushed, when the connection's output
	// queue is empty: every byte has been handed to the kernel.
	OnFlushed(c *Conn)
}

// WantFlushed asks for one OnFlushed call (see FlushHandler) once all queued output,
// memory and files, has been sent. If nothing is queued, OnFlushed is called at the
// end of this loop iteration. A handler that does not implement FlushHandler is not
// called.
func (c *Conn) WantFlushed() {
	if c.flags&fClosed != 0 {
		return
	}
	c.flags |= fWantFlushed
	c.markDirty()
}

// maxWriteTimeout is the longest write timeout SetWriteTimeout keeps (milliseconds
// in 32 bits); longer ones are cut to it.
const maxWriteTimeout = time.Duration(1<<32-1) * time.Millisecond

// SetWriteTimeout bounds how long queued output may wait: while any output, memory
// or file, is queued and the socket accepts no byte of it for d, the connection is
// closed and OnClose reports ErrWriteTimeout. Every byte sent restarts the wait, so
// a peer that reads slowly but steadily is not cut; setting the timeout while output
// waits starts a fresh wait. It applies in every phase, CloseAfterFlush included.
// d <= 0 turns it off. The setting stays until changed; with nothing queued it costs
// no timer. Resolution is the wheel's 10 ms tick, from 1 ms up to about 49 days.
func (c *Conn) SetWriteTimeout(d time.Duration) {
	if c.flags&fClosed != 0 {
		return
	}
	q := c.out
	if d <= 0 {
		c.wto = 0
		if q != nil {
			c.loop.wheel.removeTimer(&q.wt)
		}
		return
	}
	c.wto = uint32((min(d, maxWriteTimeout) + time.Millisecond - 1) / time.Millisecond)
	if q != nil && len(q.segs) > 0 {
		c.loop.wheel.removeTimer(&q.wt)
		q.progress = c.loop.nowNano
		c.loop.wheel.addTimer(&q.wt, q.progress+int64(c.wto)*1e6)
	}
}

// checkWriteProgress runs when a connection's write timer expires: it closes the
// connection if no byte has been sent for the write timeout, else waits on from the
// last byte sent.
func (l *Loop) checkWriteProgress(c *Conn) {
	q := c.out
	if c.flags&fClosed != 0 || q == nil || c.wto == 0 || len(q.segs) == 0 {
		return
	}
	due := l.lastProgress(c, q) + int64(c.wto)*1e6
	if l.nowNano >= due {
		l.closeConn(c, ErrWriteTimeout)
		return
	}
	l.wheel.addTimer(&q.wt, due)
}

// WantDrain asks for one OnDrain call once queued output falls below the low-water
// mark (or empties). If it already has, OnDrain is called at the end of this loop
// iteration.
func (c *Conn) WantDrain() {
	c.flags |= fWantDrain
	c.markDirty()
}

// SetOutputPausesRead chooses whether queued output above the high-water mark
// stops reading from the connection (on, the default: a server does not read
// more requests while its answers to earlier ones wait). A relay turns it off
// on both of its connections, since there the bytes read from a connection go to
// the other one, not back to its own output: the relay bounds each direction by
// pausing that direction's source when the destination's queue is above high
// water (Buffered, WantDrain; OnDrain still fires at low water). With it on,
// a peer that reads only after its own writes complete (an echo server writing
// what it read) would stop both directions at once: its output to the relay
// waits for the relay to read, while the relay has stopped reading it because
// the bytes queued for it are not read. With it off, a write that meets a reset
// still lets the handler have what the peer sent before the reset, then the
// connection closes (epoll reads them first; io_uring has received them already;
// the portable engine waits for its reader's end).
func (c *Conn) SetOutputPausesRead(on bool) {
	if c.flags&fClosed != 0 {
		return
	}
	if on {
		c.flags &^= fOwnPacing
		if c.Buffered() > c.loop.eng.cfg.HighWater {
			c.flags |= fHiPaused
		}
		return
	}
	c.flags |= fOwnPacing
	if c.flags&fHiPaused != 0 {
		c.flags &^= fHiPaused
		c.loop.schedule(c)
	}
}

// ResumeRead restarts reading. Bytes left unconsumed earlier are passed to OnData
// again at the end of this loop iteration, before any new read.
func (c *Conn) ResumeRead() {
	if c.flags&fClosed != 0 {
		return
	}
	c.flags &^= fPaused
	c.loop.schedule(c)
}

// SetTimeout arms the connection's single timer to fire OnTimeout after d,
// replacing any earlier timer. d <= 0 disarms it.
func (c *Conn) SetTimeout(d time.Duration) {
	if c.flags&fClosed != 0 {
		return
	}
	if d <= 0 {
		c.loop.wheel.remove(c)
		return
	}
	c.loop.wheel.add(c, c.loop.nowNano+int64(d))
}

// CancelTimeout disarms the connection's timer.
func (c *Conn) CancelTimeout() { c.loop.wheel.remove(c) }

// Close closes the connection at once, discarding queued output. err is reported to
// OnClose as the reason; nil means an orderly close by this side.
func (c *Conn) Close(err error) { c.loop.closeConn(c, err) }

// CloseAfterFlush sends what is queued, then closes; reading stops at once. With
// linger the engine shuts down the write side and discards input until the peer
// closes or a short linger period ends, so that a peer still sending does not turn
// the last response into a reset. Without linger the connection closes as soon as
// its output has gone (use it when the peer's request was read completely); if
// unread input is pending at that moment, the engine lingers after all.
func (c *Conn) CloseAfterFlush(linger bool) {
	if c.flags&fClosed != 0 {
		return
	}
	c.flags |= fCloseAfterFlush | fPaused
	if !linger {
		c.flags |= fNoLinger
	}
	c.markDirty()
}

// DropAfterFlush is CloseAfterFlush for a peer cut off for abuse (a flood): what is
// queued is sent, the write side is shut down and the connection closes at once,
// without reading or lingering on whatever the peer still sends. If input is unread
// at that moment the kernel answers it with a reset, which may also discard the last
// output still in flight to a distant peer; on loopback and on a peer that stopped
// sending it arrives. Use it when reading the peer's remaining input would only feed
// the attack; an ordinary close should keep CloseAfterFlush's linger.
func (c *Conn) DropAfterFlush() {
	if c.flags&fClosed != 0 {
		return
	}
	c.flags |= fCloseAfterFlush | fPaused | fDrop
	c.markDirty()
}

func (c *Conn) queue() *outq {
	if c.out == nil {
		q := c.loop.getOutq()
		q.wt.c = c
		q.progress = c.loop.nowNano
		c.out = q
	}
	return c.out
}

func (c *Conn) markDirty() {
	if c.flags&fDirty == 0 {
		c.flags |= fDirty
		c.loop.dirty = append(c.loop.dirty, c)
	}
}

// LowWater returns the output level at or below which reading resumes; OnDrain
// fires below it.
func (e *Engine) LowWater() int { return e.cfg.LowWater }

// HighWater returns the output level above which the engine stops reading.
func (e *Engine) HighWater() int { return e.cfg.HighWater }

// Loops returns the engine's loops.
func (e *Engine) Loops() []*Loop { return e.loops }

// Stats adds up the counters of all loops.
func (e *Engine) Stats() Stats {
	var s Stats
	for _, l := range e.loops {
		s = s.Add(l.Stats())
	}
	return s
}

// drained is called by a loop once it has no connections left during shutdown.
func (e *Engine) drained(l *Loop) {
	if l.stop {
		return
	}
	l.stop = true
	e.mu.Lock()
	e.drainedN++
	if e.drainedN == len(e.loops) {
		close(e.drainCh)
	}
	e.mu.Unlock()
}

func (l *Loop) fireTimer(c *Conn) {
	if c.flags&fClosed != 0 {
		return
	}
	if c.flags&fLinger != 0 {
		l.closeConn(c, nil)
		return
	}
	if c.flags&fConnecting != 0 {
		l.connectTimedOut(c)
		return
	}
	c.handler().OnTimeout(c)
}

// dispatch passes data to the handler and keeps what it leaves unconsumed (retain is
// the engine's own way of storing it).
func (l *Loop) dispatch(c *Conn, data []byte) {
	used := c.handler().OnData(c, data)
	if c.flags&(fClosed|fBroken) != 0 {
		return
	}
	if used < 0 || used > len(data) {
		used = len(data)
	}
	rest := data[used:]
	switch {
	case len(rest) == 0:
		l.dropInput(c)
	case len(rest) > maxRetained && c.flags&(fPaused|fHiPaused) == 0:
		// The handler wants more than the engine buffers. (A paused handler may leave
		// a whole read behind; it must consume it once it resumes.)
		l.closeConn(c, ErrInputOverflow)
	default:
		l.retain(c, rest)
	}
}

// flushDirty flushes every connection marked during this iteration.
func (l *Loop) flushDirty() {
	for i := 0; i < len(l.dirty); i++ {
		c := l.dirty[i]
		l.dirty[i] = nil
		c.flags &^= fDirty
		if c.flags&fClosed == 0 {
			l.flush(c)
		}
	}
	l.dirty = l.dirty[:0]
}

// afterFlush applies what follows a write attempt: an emptied queue goes back to the
// loop, output above high water stops reading and at low water resumes it and fires
// OnDrain, and a connection asked to close after its output does so (lingering when
// the peer may still send).
func (l *Loop) afterFlush(c *Conn) {
	if q := c.out; q != nil && len(q.segs) == 0 {
		l.putOutq(q)
		c.out = nil
	}
	mem := c.Buffered()
	if mem > l.eng.cfg.HighWater {
		if c.flags&fOwnPacing == 0 {
			c.flags |= fHiPaused
		}
	} else if mem <= l.eng.cfg.LowWater {
		if c.flags&fHiPaused != 0 {
			c.flags &^= fHiPaused
			l.schedule(c)
		}
		// OnDrain fires strictly below low water: at exactly LowWater a handler that
		// writes while Buffered() < LowWater has no room, would ask again, and the
		// loop would call it back forever without returning to the poller.
		if c.flags&fWantDrain != 0 && (mem < l.eng.cfg.LowWater || mem == 0) {
			c.flags &^= fWantDrain
			c.handler().OnDrain(c)
			if c.flags&fClosed != 0 {
				return
			}
		}
	}
	q := c.out
	if q == nil && c.flags&fWantFlushed != 0 {
		c.flags &^= fWantFlushed
		if fh, ok := c.handler().(FlushHandler); ok {
			fh.OnFlushed(c)
			if c.flags&fClosed != 0 {
				return
			}
			q = c.out // OnFlushed may have queued more
		}
	}
	if c.flags&fCloseAfterFlush != 0 && q == nil && c.flags&fLinger == 0 {
		if c.flags&fNoLinger != 0 && c.Unread() == 0 {
			l.closeFlushed(c)
			return
		}
		if c.flags&fDrop != 0 {
			l.drop(c)
			return
		}
		l.linger(c)
		return
	}
	if q != nil && c.wto != 0 && q.wt.at == 0 && c.flags&fClosed == 0 {
		l.wheel.addTimer(&q.wt, l.lastProgress(c, q)+int64(c.wto)*1e6)
	}
}

// nothingToSend is SendFile's guard: on a closed connection or for an empty range it
// calls release (as SendFile promises) and reports true with the error to return.
func (c *Conn) nothingToSend(n int64, release func()) (bool, error) {
	var err error
	switch {
	case c.flags&(fClosed|fBroken) != 0:
		err = ErrClosed
	case n > 0:
		return false, nil
	}
	if release != nil {
		release()
	}
	return true, err
}

// flushNowBytes is the queued amount above which Write starts sending at once
// instead of waiting for the end of the loop iteration.
const flushNowBytes = 64 << 10

// Buffered reports how many bytes of output are queued in memory (file segments not
// counted; in the portable engine including bytes a writer goroutine is sending now).
func (c *Conn) Buffered() int {
	if c.out == nil {
		return 0
	}
	return c.out.mem
}

// Write queues p for sending; p is copied and may be reused at once. Output goes to
// the socket at the end of the current loop iteration, or at once when a lot is
// queued. Above the high-water mark the engine stops reading from the connection;
// producers should check Buffered and use WantDrain.
func (c *Conn) Write(p []byte) error {
	if c.flags&(fClosed|fBroken) != 0 {
		return ErrClosed
	}
	if len(p) == 0 {
		return nil
	}
	q := c.queue()
	q.appendMem(c.loop, p)
	return c.queuedMem(q)
}

// queuedMem follows memory added to q: the connection is flushed at the end of the
// iteration, stops reading above high water and sends at once when a lot is queued.
func (c *Conn) queuedMem(q *outq) error {
	c.markDirty()
	if q.mem > c.loop.eng.cfg.HighWater && c.flags&fOwnPacing == 0 {
		c.flags |= fHiPaused // stop reading until the queue drains
	}
	if q.mem >= flushNowBytes {
		return c.loop.sendNow(c)
	}
	return nil
}

// endIteration runs the work every loop iteration ends with: resumed connections,
// expired connection timers and Timers, queued output, and the shutdown check.
func (l *Loop) endIteration() {
	l.iters++
	l.runDeferred()
	l.runPending()
	l.wheel.advance(l.nowNano, l.fireTimer, l.fireLoopTimer)
	l.flushDirty()
	if l.drain && l.nconns == 0 {
		l.eng.drained(l)
	}
}
