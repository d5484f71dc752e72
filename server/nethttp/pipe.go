package nethttp

import (
	"io"
	"os"
	"sync"
	"time"
)

// Backpressure bounds of a pipe.
const (
	// inHigh is how much input may wait for the goroutine before the source is
	// paused; inLow is where it resumes.
	inHigh = 256 << 10
	inLow  = 64 << 10
	// outWindow bounds output posted to the loop and not yet handed to the
	// connection; the goroutine also waits while the connection's own queue is
	// above outWindow/2, until it drains.
	outWindow = 1 << 20
)

// loopSide is what a pipe needs from the event loop. Except for post, every
// method is called on the loop.
type loopSide interface {
	// post runs f on the loop, or drops it if the connection is gone; any goroutine.
	post(f func())
	// postRaw runs f on the loop, where f must check gone first; any goroutine.
	postRaw(f func())
	// gone reports whether the connection has gone (post would have dropped f).
	gone() bool
	// pauseInput stops the input source; resumeInput restarts it.
	pauseInput()
	resumeInput()
	// buffered reports the connection's queued output in bytes.
	buffered() int
	// wantDrain asks for pipe.drained once the connection's output has drained.
	wantDrain()
	// finished reports, before a posted write runs, an error if the other side no
	// longer takes output (the server ended the response itself), else nil.
	finished() error
}

// pipe moves bytes between an event loop and one goroutine, with backpressure in
// both directions. The input half (put, end, fail on the loop; Read, closeRead on
// the goroutine) carries a request body or a hijacked connection's bytes; the
// output half (send on the goroutine; drained on the loop) carries the response or
// the hijacked connection's writes. Read and send block, honouring the deadlines
// set with setReadDeadline and setWriteDeadline. mu guards every field after it.
type pipe struct {
	loop          loopSide
	readClosedErr error // what Read returns after closeRead

	mu         sync.Mutex
	cond       sync.Cond
	in         [][]byte      // copies of the pieces the loop delivered, oldest first
	size       int           // bytes in in
	eof        bool          // the input ended cleanly
	rerr       error         // the input failed; Read returns it once in is empty
	werr       error         // the output failed; send returns it
	wfailed    chan struct{} // closed once werr is set; made by outputFailed
	readClosed bool
	paused     bool // the input source is paused (above inHigh)
	inflight   int  // bytes posted to the loop and not yet written
	blocked    bool // waiting for drained
	waiters    int  // goroutines blocked in Read or reserve (waiting)
	rdl, wdl   deadline
}

// init prepares a zero pipe for use.
func (p *pipe) init(l loopSide, readClosedErr error) {
	p.loop, p.readClosedErr = l, readClosedErr
	p.cond.L = &p.mu
}

// put runs on the loop with newly arrived input; b is copied.
func (p *pipe) put(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readClosed || p.rerr != nil || len(b) == 0 {
		return
	}
	p.in = append(p.in, append([]byte(nil), b...))
	p.size += len(b)
	if p.size > inHigh && !p.paused {
		p.paused = true
		p.loop.pauseInput()
	}
	p.cond.Broadcast()
}

// end runs on the loop when the input ended cleanly.
func (p *pipe) end() {
	p.mu.Lock()
	p.eof = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

// fail runs on the loop when the input or the whole connection failed: pending and
// later Reads (once the delivered bytes are read) return rerr, sends return werr.
// A nil error leaves that half alone; only the first error of each half counts.
func (p *pipe) fail(rerr, werr error) {
	p.mu.Lock()
	if p.rerr == nil && !p.eof {
		p.rerr = rerr
	}
	if p.werr == nil && werr != nil {
		p.werr = werr
		if p.wfailed != nil {
			close(p.wfailed)
		}
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// outputFailed returns a channel closed once the output half has failed; any
// goroutine.
func (p *pipe) outputFailed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wfailed == nil {
		p.wfailed = make(chan struct{})
		if p.werr != nil {
			close(p.wfailed)
		}
	}
	return p.wfailed
}

// Read returns delivered input, blocking until some arrives, the input ends or
// fails, or the read deadline passes.
func (p *pipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.in) == 0 && !p.eof && p.rerr == nil && !p.readClosed {
		if p.rdl.passed() {
			return 0, os.ErrDeadlineExceeded
		}
		p.wait()
	}
	if p.readClosed {
		return 0, p.readClosedErr
	}
	if len(p.in) == 0 {
		if p.eof {
			return 0, io.EOF
		}
		return 0, p.rerr
	}
	n := copy(b, p.in[0])
	if n == len(p.in[0]) {
		p.in[0] = nil
		p.in = p.in[1:]
	} else {
		p.in[0] = p.in[0][n:]
	}
	p.size -= n
	if p.paused && p.size < inLow {
		p.paused = false
		p.loop.post(p.loop.resumeInput)
	}
	return n, nil
}

// closeRead drops undelivered input; later Reads return readClosedErr. A paused
// source is resumed so that the loop can discard the rest.
func (p *pipe) closeRead() {
	p.mu.Lock()
	p.readClosed = true
	p.in, p.size = nil, 0
	wasPaused := p.paused
	p.paused = false
	p.cond.Broadcast()
	p.mu.Unlock()
	if wasPaused {
		p.loop.post(p.loop.resumeInput)
	}
}

// send waits until the loop has taken earlier output (below outWindow in flight,
// the connection drained), then posts write, which puts n bytes on the connection.
func (p *pipe) send(n int, write func()) error {
	if err := p.reserve(n); err != nil {
		return err
	}
	p.loop.postRaw(func() {
		if p.begin() {
			write()
			p.wrote(n)
		}
	})
	return nil
}

// reserve is the goroutine's half of send, for a caller that posts its own
// closure (which calls begin and wrote as send's does): it waits until the loop has
// taken earlier output, then counts n bytes in flight. Once the write deadline has
// passed it fails at once, as a write to a net.Conn does.
func (p *pipe) reserve(n int) error {
	p.mu.Lock()
	for p.werr == nil {
		if p.wdl.passed() {
			p.mu.Unlock()
			return os.ErrDeadlineExceeded
		}
		if !p.blocked && p.inflight <= outWindow {
			break
		}
		p.wait()
	}
	if err := p.werr; err != nil {
		p.mu.Unlock()
		return err
	}
	p.inflight += n
	p.mu.Unlock()
	return nil
}

// wait blocks on cond, counted in waiters; p.mu is held.
func (p *pipe) wait() {
	p.waiters++
	p.cond.Wait()
	p.waiters--
}

// waiting reports whether a goroutine is blocked in Read or in a send, waiting for
// the client (its body, or its taking of output); any goroutine.
func (p *pipe) waiting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiters > 0
}

// begin runs on the loop before a posted write: it reports false if the connection
// has gone (the write is dropped), and fails the output half if the server ended
// the response itself (the write then finds the response ended).
func (p *pipe) begin() bool {
	if p.loop.gone() {
		return false
	}
	if err := p.loop.finished(); err != nil {
		p.fail(nil, err)
	}
	return true
}

// wrote runs on the loop after a posted write of n bytes: the bytes leave the
// window, and the goroutine waits for the connection to drain if it is full.
func (p *pipe) wrote(n int) {
	p.mu.Lock()
	p.inflight -= n
	if !p.blocked && p.werr == nil && p.loop.buffered() > outWindow/2 {
		p.blocked = true
		p.loop.wantDrain()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// drained runs on the loop once the connection's output has drained.
func (p *pipe) drained() {
	p.mu.Lock()
	p.blocked = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// outputErr reports the error that ended the output half, if any.
func (p *pipe) outputErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.werr
}

func (p *pipe) setReadDeadline(t time.Time)  { p.setDeadline(&p.rdl, t) }
func (p *pipe) setWriteDeadline(t time.Time) { p.setDeadline(&p.wdl, t) }

func (p *pipe) setDeadline(d *deadline, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.t = t
	p.cond.Broadcast() // waiters re-check against the new deadline
	if !t.IsZero() {
		d.timer = time.AfterFunc(time.Until(t), func() {
			p.mu.Lock()
			p.cond.Broadcast()
			p.mu.Unlock()
		})
	}
}

// stopDeadlines stops the deadline timers once the pipe's user is done (the
// handler returned, the hijacked connection closed): a deadline set far ahead
// would otherwise keep its timer, and through it the pipe and its exchange, alive
// until it fires.
func (p *pipe) stopDeadlines() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range []*deadline{&p.rdl, &p.wdl} {
		if d.timer != nil {
			d.timer.Stop()
			d.timer = nil
		}
	}
}

// deadline is one direction's deadline; the zero value has none.
type deadline struct {
	t     time.Time
	timer *time.Timer // wakes the waiters when t passes
}

func (d *deadline) passed() bool { return !d.t.IsZero() && !time.Now().Before(d.t) }
