package server

import (
	"bytes"
	"errors"
	"sync/atomic"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/http2"
)

// Connection states.
const (
	stHead = iota // waiting for (the rest of) a request head
	stBody        // receiving the current request's body
	stWait        // body complete; the response is still being produced
)

// maxDiscard is how much of an unread request body the server reads and drops to
// keep a connection alive after the response; beyond it the connection is closed.
const maxDiscard = 256 << 10

// maxHead is the largest request head the server accepts, whatever the configured
// limits: the engine keeps at most engine.MaxUnconsumed bytes of a head that has not
// arrived whole, so a longer one could never complete.
const maxHead = engine.MaxUnconsumed

// Errors for a request head longer than maxHead: in the request line, or after it.
var (
	errLineTooLong = &http1.Error{Status: 414, Reason: "request line longer than the server holds"}
	errHeadTooLong = &http1.Error{Status: 431, Reason: "request head longer than the server holds"}
)

// headTooLarge returns the error for a head starting at in that is longer than maxHead.
func headTooLarge(in []byte) error {
	if bytes.IndexByte(in[:min(len(in), maxHead)], '\n') < 0 {
		return errLineTooLong
	}
	return errHeadTooLong
}

// loopState is the server's per-loop state; every field is owned by that loop except
// the atomic counters, which any goroutine may read.
type loopState struct {
	srv         *Server
	loop        *engine.Loop
	parser      http1.Parser  // shared parser for heads that arrive whole
	req         http1.Request // the request being dispatched inline
	ctxFree     []*Ctx
	parserFree  []*http1.Parser
	partial     map[*conn]*http1.Parser // parsers of connections with an incomplete head
	pumps       map[*conn]*FilePump     // file pumps of connections that cannot sendfile
	waiting     map[*conn]*Ctx          // ended responses whose observers wait for the output (observeLater)
	scratch     []byte
	h2fields    []http2.Field // scratch for HTTP/2 response field sections (h2x), used within one call
	h2date      string        // Date value of HTTP/2 responses for the second h2dateSec
	h2dateSec   int64
	requests    atomic.Uint64
	badRequests atomic.Uint64
	// done counts requests whose response ended or whose connection closed
	// first; requests-done is the number in progress.
	done atomic.Uint64
	// reading is the number of connections with a partial request head.
	reading atomic.Int64
	// fileReadBytes counts file bytes sent by FilePump reads instead of sendfile.
	fileReadBytes atomic.Uint64
	// h2 counts the protocol events of this loop's HTTP/2 connections; h2Opened and
	// h2Closed count the connections. Written by the loop only, read by Stats.
	h2                 http2.Counters
	h2Opened, h2Closed atomic.Uint64
	// h2Tarpitted is the number of this loop's HTTP/2 connections held in the flood
	// tarpit (HTTP2Options.FloodTarpit). Owned by the loop.
	h2Tarpitted int
}

func newLoopState(s *Server, l *engine.Loop) *loopState {
	ls := &loopState{srv: s, loop: l, scratch: make([]byte, 0, 4096)}
	ls.parser.Limits = s.opts.Limits
	ls.partial = map[*conn]*http1.Parser{}
	return ls
}

func (ls *loopState) getCtx() *Ctx {
	if n := len(ls.ctxFree); n > 0 {
		c := ls.ctxFree[n-1]
		ls.ctxFree = ls.ctxFree[:n-1]
		return c
	}
	return &Ctx{}
}

func (ls *loopState) putCtx(c *Ctx) {
	c.reset()
	if len(ls.ctxFree) < 256 {
		ls.ctxFree = append(ls.ctxFree, c)
	}
}

// conn is the server's per-connection state, kept small because an idle connection
// holds nothing else. Owned by the connection's loop.
type conn struct {
	ls      *loopState
	ch      *connHandler
	cur     *Ctx // request in progress, nil when idle
	partial bool // an incomplete head is parked in ls.partial
	state   uint8
	timed   bool // header timer armed for the partial head
	closing bool // closing after the current response; further input is ignored
	// upgraded is set by Ctx.Upgrade: the connection belongs to another handler and
	// OnData returns at once, leaving the unconsumed bytes to it.
	upgraded bool
	pumped   bool // files go through ls.pumps[cn] (the stream cannot sendfile)
	eof      bool // the peer half-closed
	held     bool // pipelined input waits until queued output has been sent (OnFlushed)
	// waiting: a response that ended with much of its output unsent (a download) is
	// in ls.waiting[cn], its observer told once that output is sent or cut off.
	waiting bool
}

// connHandler is the engine.Handler for HTTP/1.1 connections.
type connHandler struct {
	srv     *Server
	handler atomic.Pointer[handlerBox] // swapped on reload, read at request start
	// noSendfile makes every connection send files through a FilePump (pread in
	// chunks) instead of sendfile(2), as an encrypted stream must. Immutable.
	noSendfile bool
	// parent, when set, is the plain handler whose handler box this one serves
	// (HTTP1Over). Immutable.
	parent *connHandler
	// layer returns the Layer a connection's bytes pass through (HTTP1Over), nil
	// for plain connections. Immutable.
	layer func(ec *engine.Conn) Layer
	// h2c, when set, takes over connections whose request asks for "Upgrade: h2c"
	// (Dispatch.H2CUpgrade; see tryH2C). Immutable.
	h2c *HTTP2
}

var (
	_ engine.Handler      = (*connHandler)(nil)
	_ engine.FlushHandler = (*connHandler)(nil)
)

func (h *connHandler) OnOpen(ec *engine.Conn) {
	cn := &conn{ls: h.srv.loops[ec.Loop().ID()], ch: h}
	ec.SetContext(cn)
	ec.SetTimeout(h.srv.opts.HeaderTimeout)
	// Every response kind, close-delimited and error responses included, is bounded
	// by the write timeout: the engine closes the connection when queued output makes
	// no progress for that long.
	ec.SetWriteTimeout(h.srv.opts.WriteTimeout)
	cn.timed = true
	if h.layer != nil {
		cn.openPump(ec, h.layer(ec))
	} else if h.noSendfile {
		cn.openPump(ec, ec)
	}
}

func (h *connHandler) OnData(ec *engine.Conn, in []byte) int {
	cn := ec.Context().(*conn)
	ls := cn.ls
	off := 0
	for off < len(in) && !ec.Closed() {
		if cn.upgraded {
			return off
		}
		if cn.closing {
			return len(in)
		}
		switch cn.state {
		case stHead:
			if cn.cur != nil {
				// A pipelined request waits until the previous response is done.
				ec.PauseRead()
				return off
			}
			if cn.outputHigh(ec) {
				// Earlier responses, in memory or files, are above the high-water mark:
				// parse no further request until all of it has gone (OnFlushed).
				cn.held = true
				ec.PauseRead()
				ec.WantFlushed()
				return off
			}
			var p *http1.Parser
			if cn.partial {
				p = ls.partial[cn]
			} else {
				p = &ls.parser
				p.Reset()
			}
			req := &ls.req
			req.Reset()
			n, err := p.ParseHead(in[off:], req)
			if err == nil && n > maxHead || err == http1.ErrNeedMore && len(in)-off > maxHead {
				err = headTooLarge(in[off:])
			}
			if err == http1.ErrNeedMore {
				if !cn.partial {
					// Park the parser's resume state until more bytes arrive (rare, so a
					// map keeps it out of the per-connection struct).
					q := ls.getParser()
					*q = *p
					ls.partial[cn] = q
					cn.partial = true
					ls.reading.Add(1)
				}
				if !cn.timed {
					ec.SetTimeout(ls.srv.opts.HeaderTimeout)
					cn.timed = true
				}
				return off
			}
			head := p.Head()
			if cn.partial {
				ls.dropPartial(cn)
			}
			if err != nil {
				cn.reject(ec, err, head)
				return len(in)
			}
			off += n
			cn.timed = false
			ls.requests.Add(1)
			cn.start(ec, req)
		case stBody:
			c := cn.cur
			if c.onBody == nil && !c.ended {
				// Nobody reads the body yet (the handler went asynchronous): hold it.
				ec.PauseRead()
				return off
			}
			if c.bodyPaused {
				return off
			}
			data, used, done, err := c.body.Next(in[off:])
			off += used
			if err != nil {
				cn.bodyError(ec, err)
				return len(in)
			}
			if len(data) > 0 {
				if c.ended {
					c.discarded += int64(len(data))
				} else if c.onBody != nil {
					c.onBody(data, false)
					if cn.cur != c {
						continue // the handler ended the response and the request is finished
					}
				}
			}
			if done {
				cn.bodyComplete(ec)
				continue
			}
			if used == 0 {
				ec.SetTimeout(ls.srv.opts.BodyTimeout)
				return off
			}
		case stWait:
			ec.PauseRead()
			return off
		}
	}
	if cn.state == stBody {
		cn.cur.bodyTimer()
	}
	return off
}

func (ls *loopState) getParser() *http1.Parser {
	if n := len(ls.parserFree); n > 0 {
		p := ls.parserFree[n-1]
		ls.parserFree = ls.parserFree[:n-1]
		return p
	}
	return &http1.Parser{Limits: ls.srv.opts.Limits}
}

// dropPartial releases the parked parser of cn.
func (ls *loopState) dropPartial(cn *conn) {
	ls.putParser(ls.partial[cn])
	delete(ls.partial, cn)
	cn.partial = false
	ls.reading.Add(-1)
}

func (ls *loopState) putParser(p *http1.Parser) {
	if len(ls.parserFree) < 64 {
		ls.parserFree = append(ls.parserFree, p)
	}
}

// start dispatches a parsed request head to the handler.
func (cn *conn) start(ec *engine.Conn, req *http1.Request) {
	ls := cn.ls
	if cn.ch.h2c != nil && cn.tryH2C(ec, req) {
		return
	}
	c := ls.getCtx()
	c.init(cn, ec, req)
	cn.cur = c
	if req.Chunked || req.ContentLength > 0 {
		c.body.Init(req, ls.srv.opts.Limits.MaxBodyBytes)
		c.hasBody = true
		cn.state = stBody
		ec.SetTimeout(ls.srv.opts.BodyTimeout)
	} else {
		cn.state = stWait
		ec.CancelTimeout()
	}
	cn.ch.box().h.ServeGale(c)
	if !c.ended && cn.cur == c && !ec.Closed() {
		c.detach()
		c.awaitHandler()
	}
}

// bodyComplete is called when the current request's body has been fully received.
func (cn *conn) bodyComplete(ec *engine.Conn) {
	c := cn.cur
	c.bodyDone = true
	cn.state = stWait
	ec.CancelTimeout()
	if c.onBody != nil && !c.ended {
		c.onBody(nil, true) // may end the response, which finishes the request
	}
	if cn.cur == c {
		if c.ended {
			cn.finish(ec)
		} else {
			c.awaitHandler()
		}
	}
}

// responseEnded is called by Ctx.End. A response that ends while the request body is
// still arriving finishes the request at once when the connection closes after it (a
// 408 for a stalled body, an error, Connection: close): the rest of the body is then
// discarded by the lingering close, and waiting for it first would hold the connection
// for a body that may never come, with no timer left to end the wait.
func (cn *conn) responseEnded(ec *engine.Conn, c *Ctx) {
	if cn.state == stBody {
		if !c.keepAlive || c.unreadBodyCloses() {
			c.keepAlive = false
			cn.finish(ec)
			return
		}
		// Read and drop the rest of the body, then finish.
		c.bodyTimer()
		if c.detached {
			cn.resumeRead(ec)
		}
		return
	}
	cn.finish(ec)
}

// unreadBodyCloses reports whether the connection must close after the response
// because the rest of the request body will not be read and dropped: reading it would
// cost more than a new connection (chunked, or more than maxDiscard octets left), or the
// client waits for a 100 Continue that will not come.
func (c *Ctx) unreadBodyCloses() bool {
	remaining := c.body.Remaining()
	return remaining < 0 || remaining > maxDiscard || (c.req.Expect100 && !c.sent100)
}

// finish ends the current request: the connection goes back to reading heads, or is
// closed when the response asked for it.
func (cn *conn) finish(ec *engine.Conn) {
	c := cn.cur
	keep := c.keepAlive && !cn.eof
	// The client may still be sending when its body was not read to the end: then the
	// close lingers so that our response does not turn into a reset.
	bodyLeft := c.hasBody && !c.bodyDone
	detached := c.detached
	cn.cur = nil
	cn.state = stHead
	cn.ls.done.Add(1)
	switch {
	case detached:
		c.release()
	case c.waiting:
		// observeNow recycles it.
	default:
		cn.ls.putCtx(c)
	}
	if !keep {
		cn.closing = true
		cn.closeAfterOutput(ec, bodyLeft)
		return
	}
	if cn.pumpPending() {
		// A file is still being read into the stream: wait for the pump, then for the
		// engine's queue, before the idle timeout starts.
		ec.CancelTimeout()
		cn.ls.pumps[cn].WhenDone(ec.WantFlushed)
	} else if ec.Pending() {
		// The response is still going out: the engine's write timeout bounds each wait
		// for progress, and the idle timeout starts once all of it has been sent.
		ec.CancelTimeout()
		ec.WantFlushed()
	} else {
		ec.SetTimeout(cn.ls.srv.opts.IdleTimeout)
	}
	if detached || cn.unread(ec) > 0 {
		cn.resumeRead(ec)
	}
}

// reject answers a malformed request head with its status and closes; head says that
// it was a HEAD request's, whose answer has no body.
func (cn *conn) reject(ec *engine.Conn, err error, head bool) {
	status, reason := 400, "Bad Request"
	var pe *http1.Error
	if errors.As(err, &pe) {
		status, reason = pe.Status, pe.Reason
	}
	cn.ls.writeError(cn, ec, status, reason, head)
	cn.closing = true
	cn.closeFlushed(ec, true)
}

// bodyError handles a malformed or oversized request body.
func (cn *conn) bodyError(ec *engine.Conn, err error) {
	c := cn.cur
	cn.ls.badRequests.Add(1)
	c.failBody(err)
	if c.headSent {
		ec.Close(err)
		return
	}
	status, reason := 400, "Bad Request"
	var pe *http1.Error
	if errors.As(err, &pe) {
		status, reason = pe.Status, pe.Reason
	}
	c.keepAlive = false
	c.Error(status, reason)
}

// writeError writes a complete small error response outside any Ctx. The answer to a
// HEAD request (head) has the Content-Length of the text and no body (RFC 9110 §9.3.2).
// Every such answer refuses a request before any handler, so it counts in
// Stats.BadRequests (a malformed or oversized head, and one not received in time).
func (ls *loopState) writeError(cn *conn, ec *engine.Conn, status int, reason string, head bool) {
	ls.badRequests.Add(1)
	b := http1.AppendStatusLine(ls.scratch[:0], 1, status)
	b = http1.AppendDateAt(b, ec.Loop().Now())
	b = append(b, ls.srv.serverH...)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	msg := http1.StatusText(status)
	if reason != "" {
		msg += ": " + reason
	}
	b = appendInt(b, int64(len(msg)+1))
	b = append(b, "\r\n\r\n"...)
	if !head {
		b = append(b, msg...)
		b = append(b, '\n')
	}
	cn.writeRaw(ec, b)
	ls.scratch = b
}

func (h *connHandler) OnEOF(ec *engine.Conn) {
	cn := ec.Context().(*conn)
	cn.eof = true
	if cn.cur != nil && cn.cur.onEOF != nil {
		cn.cur.onEOF()
	}
	if cn.cur == nil {
		cn.closeFlushed(ec, true)
		return
	}
	if cn.state == stBody {
		// The body can never complete now. A response that has ended only waited for
		// the rest of a body nobody read: it goes out first, then the connection closes.
		if cn.cur.ended {
			cn.finish(ec)
			return
		}
		ec.Close(nil)
	}
	// Otherwise the response completes and finish closes the connection.
}

func (h *connHandler) OnDrain(ec *engine.Conn) {
	cn := ec.Context().(*conn)
	if cn.pumped && cn.pumpDrained() {
		return // file bytes still wait: the response's producer is not due yet
	}
	if c := cn.cur; c != nil && c.onDrain != nil {
		f := c.onDrain
		c.onDrain = nil
		f()
	}
}

// OnFlushed runs once all queued output has been sent after a response ended: the
// connection is idle from now (the idle timeout starts), and pipelined requests held
// back by outputHigh are parsed again.
func (h *connHandler) OnFlushed(ec *engine.Conn) {
	cn := ec.Context().(*conn)
	if !cn.pumpPending() {
		cn.observeNow(0) // a response waiting for its output: all of it has gone
	}
	if cn.cur != nil || cn.closing || cn.pumpPending() {
		return // a pending pump asks again when it is done
	}
	if cn.held {
		cn.held = false
		cn.resumeRead(ec)
	}
	if !cn.partial {
		ec.SetTimeout(h.srv.opts.IdleTimeout)
	}
}

// outputHigh reports whether cn's queued output, memory and files alike (those still
// waiting in its FilePump included), is above the high-water mark.
func (cn *conn) outputHigh(ec *engine.Conn) bool {
	hw := cn.ls.srv.eng.HighWater()
	if cn.pumped {
		return cn.ls.pumps[cn].Buffered() > hw
	}
	return ec.Buffered() > hw || ec.Pending() && ec.QueuedBytes() > int64(hw)
}

func (h *connHandler) OnTimeout(ec *engine.Conn) {
	cn := ec.Context().(*conn)
	switch {
	case cn.cur == nil && cn.partial:
		// A partial head (a slow client): answer 408 and close.
		cn.ls.writeError(cn, ec, 408, "request head not received in time", cn.ls.partial[cn].Head())
		cn.closeFlushed(ec, true)
	case cn.cur == nil:
		ec.Close(nil) // idle keep-alive connection
	case cn.state == stBody && cn.cur.ended:
		// The response is complete and only the rest of a body nobody read was awaited
		// (to be dropped): stop waiting and close once the response has been sent, so
		// that a download in progress is not cut.
		cn.cur.keepAlive = false
		cn.finish(ec)
	case cn.state == stBody && !cn.cur.headSent && (cn.cur.onBody == nil || cn.cur.bodyPaused):
		// The response timeout while the handler holds the body (Ctx.bodyTimer).
		cn.cur.keepAlive = false
		cn.cur.Error(504, "handler did not respond in time")
	case cn.state == stBody && !cn.cur.headSent:
		cn.cur.failBody(ErrBodyTimeout)
		cn.cur.keepAlive = false
		cn.cur.Error(408, "request body not received in time")
	case cn.state == stWait && !cn.cur.headSent && cn.cur.onDrain == nil:
		// The response timeout: the handler has produced nothing in time.
		cn.cur.keepAlive = false
		cn.cur.Error(504, "handler did not respond in time")
	case cn.cur.CloseDelimited():
		// The response timeout cuts a body whose end is the close: a reset,
		// or the client would take what it got for the whole body.
		ec.Abort(engine.ErrTimeout)
	default:
		ec.Close(engine.ErrTimeout)
	}
}

func (h *connHandler) OnShutdown(ec *engine.Conn) {
	cn := ec.Context().(*conn)
	switch {
	case cn.cur == nil && (ec.Pending() || cn.pumpPending()):
		// The last response is still going out (a download): it is in flight, not
		// idle. Let it finish within the grace period, then close; requests that
		// arrive meanwhile are not served.
		cn.closing = true
		cn.closeAfterOutput(ec, false)
	case cn.cur == nil:
		ec.Close(nil) // idle: nothing queued, nothing in progress
	case cn.cur.ended:
		// The response is complete and only the rest of a body nobody read was
		// awaited: send the response and close, without waiting for that body.
		cn.cur.keepAlive = false
		cn.finish(ec)
	default:
		cn.cur.keepAlive = false
	}
}

func (h *connHandler) OnClose(ec *engine.Conn, err error) {
	cn := ec.Context().(*conn)
	if cn.partial {
		cn.ls.dropPartial(cn)
	}
	var unsent int64 // what the close cut off, for the observers below
	if cn.waiting || cn.cur != nil {
		unsent = cn.unsentBytes(ec)
	}
	if cn.pumped {
		cn.closePump()
	}
	cur := int64(0)
	if c := cn.cur; c != nil {
		cur = min(unsent, c.written) // the current response was queued last
	}
	cn.observeNow(unsent - cur)
	if c := cn.cur; c != nil {
		cn.cur = nil
		cn.ls.done.Add(1)
		c.closed = true
		c.unsent = cur
		c.observed()
		if c.hasBody && !c.bodyDone {
			c.failBody(err)
		}
		if f := c.onClose; f != nil {
			c.onClose = nil
			f(err)
		}
		if !c.detached {
			cn.ls.putCtx(c)
		}
	}
}

// observeAfterFlush is the output (bytes) still queued when a response ends above
// which its observer (access log, metrics) is told only once that output has been
// sent or the connection closed: the log then has the bytes a download delivered
// and the time it took to send, as nginx's has. Below it the response is reported
// at once, as sent whole: a small response is handed to the kernel in the same loop
// iteration.
const observeAfterFlush = 64 << 10

// unsentBytes reports how much of cn's output has not been handed to the kernel
// yet: the engine's queue (during OnClose, what it held when it closed) and what a
// file pump has yet to read.
func (cn *conn) unsentBytes(ec *engine.Conn) int64 {
	n := ec.Unsent()
	if cn.pumped {
		n += int64(cn.ls.pumps[cn].Buffered())
	}
	return n
}

// observeLater parks c, whose response just ended, until its output is sent
// (OnFlushed) or the connection closes (OnClose). Its request is copied, because
// the read buffer moves on to the next request. A response that was already waiting
// is reported first, as sent whole: its output went before c's.
func (cn *conn) observeLater(c *Ctx) {
	cn.observeNow(0)
	if !c.detached {
		c.owned = cloneRequest(&c.ownedReq, c.req, c.owned[:0])
		c.req = &c.ownedReq
	}
	c.waiting = true
	if cn.ls.waiting == nil {
		cn.ls.waiting = map[*conn]*Ctx{}
	}
	cn.ls.waiting[cn] = c
	cn.waiting = true
	if !c.ec.Closed() {
		c.ec.WantFlushed()
	}
}

// observeNow tells the observer of cn's waiting response, if any, that it is over,
// unsent bytes short of whole, and recycles its Ctx.
func (cn *conn) observeNow(unsent int64) {
	if !cn.waiting {
		return
	}
	c := cn.ls.waiting[cn]
	delete(cn.ls.waiting, cn)
	cn.waiting = false
	c.unsent = unsent
	c.observed()
	if !c.detached {
		cn.ls.putCtx(c)
	}
}
