package server

import (
	"bytes"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/http2"
	"github.com/gale-server/gale/internal/os/pool"
)

// h2x is one HTTP/2 stream served as an Exchange. It owns a copy of the request (so
// Detach has nothing to copy) and a queue of response output the stream's flow-control
// window has not yet let through. Every field is owned by the connection's loop.
type h2x struct {
	hc *h2conn
	s  *http2.Stream
	id uint32

	// Request view: method, target and authority copied into one buffer.
	buf                                     []byte
	method, target, path, query, host, norm []byte
	reqTrailers                             []http2.Field
	isHead                                  bool

	// Request body: pieces that arrived while nobody listened or delivery was paused
	// (bounded by the stream's receive window, since Consumed waits for delivery).
	onBody     func(p []byte, end bool)
	held       []byte
	bodyEnd    bool // END_STREAM (or trailers) received
	bodyPaused bool
	bodyAsked  bool          // OnBody was called (a 100 Continue went out if one was expected)
	bodyFailed bool          // 413 or 408 answered for the body: done resets the stream
	bodyTimer  *engine.Timer // timeouts.body while the handler waits for body octets
	bodyBuf    []byte
	bodyLimit  int64
	bodyRead   int64 // body octets received, against bodyLimit
	discarded  int64 // body octets dropped after the response ended
	// discardTimer is h2DiscardTime while they are dropped.
	discardTimer *engine.Timer

	// Response.
	hdr      Header
	trailer  Header
	status   int
	clen     int64
	written  int64
	queue    []h2item // output waiting for window, in order
	queued   int      // bytes in queue (memory and files)
	chunk    []byte   // pooled read buffer of the file at the front of the queue
	endWant  bool     // End was called; END_STREAM goes once the queue drains
	headSent bool
	sent100  bool  // a 100 Continue went: OnBody's, or the handler's own
	ended    bool  // END_STREAM (or RST_STREAM) sent: nothing more goes out
	closed   bool  // the stream or the connection went first
	waiting  bool  // counted in h2conn.blocked
	lastOut  int64 // loop clock (ns) of the last DATA out while waiting, or when the wait began
	onDrain  func()
	onClose  func(err error)
	onEOF    func()           // OnPeerEOF's; nil once run or the exchange ended
	obs      ResponseObserver // told when the exchange ends; nil when none
	began    time.Time        // when obs was attached
	// upstream and upstreamTime are set by the proxy (SetUpstream), for logs.
	upstream     netip.AddrPort
	upstreamTime time.Duration
}

// h2item is one piece of queued response output: memory (owned) or a file range.
type h2item struct {
	mem     []byte
	fd      int
	off, n  int64
	release func()
	file    bool
}

var _ Exchange = (*h2x)(nil)

// newH2x builds the exchange of a stream whose request field section is complete.
func newH2x(hc *h2conn, s *http2.Stream) *h2x {
	x := &h2x{hc: hc, s: s, id: s.ID, status: 200, clen: -1}
	s.Value = x
	host := s.Authority
	if host == "" {
		for _, f := range s.Header {
			if f.Name == "host" {
				host = f.Value
				break
			}
		}
	}
	x.buf = make([]byte, 0, len(s.Method)+len(s.Path)+len(host))
	x.buf = append(x.buf, s.Method...)
	x.buf = append(x.buf, s.Path...)
	x.buf = append(x.buf, host...)
	m, t := len(s.Method), len(s.Method)+len(s.Path)
	x.method, x.target = x.buf[:m:m], x.buf[m:t:t]
	if host != "" {
		x.host = x.buf[t:]
	}
	x.path, x.query = x.target, nil
	if i := bytes.IndexByte(x.target, '?'); i >= 0 {
		x.path, x.query = x.target[:i], x.target[i+1:]
	}
	x.isHead = s.Method == "HEAD"
	x.bodyEnd = s.BodyDone()
	x.bodyLimit = hc.h.srv.opts.Limits.MaxBodyBytes
	return x
}

// serve normalizes the path and runs the handler. A handler without ServeExchange
// (HTTP/1.1 only) gets 505. The asterisk-form path of "OPTIONS *" (the only other path
// the HTTP/2 layer admits) is its own normal form, as in http1.Request.NormPath.
func (x *h2x) serve() {
	if string(x.path) == "*" {
		x.norm = x.path
	} else if len(x.path) > 0 && x.path[0] == '/' {
		n, err := http1.NormalizePath(nil, x.path)
		if err != nil {
			x.Error(err.Status, err.Reason)
			return
		}
		x.norm = n
	}
	if x.bodyLimit > 0 && x.s.ContentLength > x.bodyLimit {
		x.Error(413, "")
		return
	}
	box := x.hc.h.box.Load()
	if eh, ok := box.h.(ExchangeHandler); ok {
		eh.ServeExchange(x)
	} else {
		x.Error(505, "this route serves HTTP/1.1 only")
	}
}

// Method returns the :method pseudo-header.
func (x *h2x) Method() []byte { return x.method }

// Target returns :path as sent.
func (x *h2x) Target() []byte { return x.target }

// Path returns :path without the query.
func (x *h2x) Path() []byte { return x.path }

// NormPath returns the normalized path (nil for a target that is not a path).
func (x *h2x) NormPath() []byte { return x.norm }

// Query returns what follows '?' in :path, or nil.
func (x *h2x) Query() []byte { return x.query }

// Host returns :authority (or the host field), nil when absent.
func (x *h2x) Host() []byte { return x.host }

// ReqHeader returns the first value of the field name; cookie fields, which HTTP/2
// clients may split (RFC 9113 §8.2.3), come back joined with "; ".
func (x *h2x) ReqHeader(name string) ([]byte, bool) {
	if http1.EqualFold(name, "cookie") {
		c := x.cookie()
		return c, c != nil
	}
	for _, f := range x.s.Header {
		if http1.EqualFold(f.Name, name) {
			return []byte(f.Value), true
		}
	}
	return nil, false
}

// cookie joins the cookie fields, or returns nil when there is none.
func (x *h2x) cookie() []byte {
	var out []byte
	for _, f := range x.s.Header {
		if f.Name == "cookie" {
			if out != nil {
				out = append(out, "; "...)
			}
			out = append(out, f.Value...)
		}
	}
	return out
}

// EachReqHeader calls f for every request field in order; the cookie fields are
// passed once, joined, where the first of them was.
func (x *h2x) EachReqHeader(f func(name, value []byte)) {
	cookieDone := false
	for _, h := range x.s.Header {
		if h.Name == "cookie" {
			if !cookieDone {
				cookieDone = true
				f([]byte("cookie"), x.cookie())
			}
			continue
		}
		f([]byte(h.Name), []byte(h.Value))
	}
}

// Proto returns "HTTP/2.0".
func (x *h2x) Proto() string { return "HTTP/2.0" }

// RemoteAddr returns the client's address.
func (x *h2x) RemoteAddr() netip.AddrPort { return x.hc.ec.RemoteAddr() }

// LocalAddr returns the connection's local address (a getsockname each call).
func (x *h2x) LocalAddr() netip.AddrPort { return x.hc.ec.LocalAddr() }

// IsHead reports a HEAD request.
func (x *h2x) IsHead() bool { return x.isHead }

// Now returns the loop's cached clock.
func (x *h2x) Now() time.Time { return x.hc.ec.Loop().Now() }

// Header returns the response fields.
func (x *h2x) Header() *Header { return &x.hdr }

// Trailer returns the response trailers, sent in a trailing HEADERS frame.
func (x *h2x) Trailer() *Header { return &x.trailer }

// SetStatus sets the status of an implicit head.
func (x *h2x) SetStatus(status int) { x.status = status }

// SetContentLength declares the body length, sent as content-length.
func (x *h2x) SetContentLength(n int64) { x.clen = n }

// WriteInformational sends a 1xx response (103 Early Hints) before the final one.
func (x *h2x) WriteInformational(status int, h *Header) {
	if x.headSent || x.closed || status < 100 || status > 199 || status == 101 {
		return
	}
	if status == 100 {
		if x.sent100 {
			return
		}
		x.sent100 = true
	}
	fields := x.hc.ls.h2fields[:0]
	if h != nil {
		fields = appendFields(fields, h)
	}
	_ = x.hc.c.WriteHeaders(x.id, status, fields, false)
	x.hc.ls.h2fields = clearFields(fields)
	x.hc.kick()
}

// WriteHeader sends the final response head: the fields, content-length when known,
// date and server (unless the handler set its own). A response that cannot have a body ends the stream with it.
func (x *h2x) WriteHeader(status int) {
	if x.headSent || x.closed {
		return
	}
	if status < 200 || status > 999 {
		status = 500
	}
	x.status, x.headSent = status, true
	if v := x.hdr.Get("Content-Length"); v != "" {
		if n, ok := http1.ParseDecimal(v); ok && x.clen < 0 {
			x.clen = n
		}
		x.hdr.Del("Content-Length")
	}
	if !bodyAllowed(status) {
		x.clen = 0
	}
	srv := x.hc.h.srv
	ownDate, ownServer := x.hdr.replaces("Date"), x.hdr.replaces("Server")
	fields := appendFields(x.hc.ls.h2fields[:0], &x.hdr)
	if x.clen >= 0 && status != 204 && status != 304 {
		fields = append(fields, http2.Field{Name: "content-length", Value: strconv.FormatInt(x.clen, 10)})
	}
	if !ownDate {
		fields = append(fields, http2.Field{Name: "date", Value: x.hc.ls.h2Date(x.Now())})
	}
	if len(srv.serverH) > 0 && !ownServer {
		fields = append(fields, http2.Field{Name: "server", Value: srv.opts.ServerName})
	}
	end := x.isHead || x.clen == 0
	_ = x.hc.c.WriteHeaders(x.id, status, fields, end)
	x.hc.ls.h2fields = clearFields(fields)
	if end {
		x.ended = true
	}
	x.hc.kick()
}

// appendFields appends h's fields, and its pre-rendered lines split again, to dst.
func appendFields(dst []http2.Field, h *Header) []http2.Field {
	for _, f := range h.kv {
		if http1.ValidField(f.name, f.value) {
			dst = append(dst, http2.Field{Name: f.name, Value: f.value})
		}
	}
	raw := h.raw
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimRight(line, "\r")
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok {
			dst = append(dst, http2.Field{Name: string(name), Value: string(bytes.TrimSpace(value))})
		}
	}
	return dst
}

// clearFields drops the strings a scratch field slice points to, keeping its storage.
func clearFields(f []http2.Field) []http2.Field {
	clear(f)
	return f[:0]
}

// bodyOK reports whether body bytes are to be sent, writing the head first if needed.
func (x *h2x) bodyOK() (bool, error) {
	if x.closed {
		return false, ErrConnClosed
	}
	if x.endWant {
		return false, ErrEnded
	}
	if !x.headSent {
		x.WriteHeader(x.status)
	}
	return !x.isHead && bodyAllowed(x.status) && !x.ended, nil
}

// Write sends body bytes (copied when they cannot go at once), writing the head first
// if needed. Writes past a declared content-length fail with ErrBodyTooLong.
func (x *h2x) Write(p []byte) (int, error) {
	ok, err := x.bodyOK()
	if !ok || len(p) == 0 {
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	n := len(p)
	if x.clen >= 0 && x.written+int64(n) > x.clen {
		n = int(x.clen - x.written)
		err = ErrBodyTooLong
	}
	x.written += int64(n)
	if len(x.queue) == 0 {
		k, werr := x.hc.c.WriteData(x.id, p[:n], false)
		if werr != nil {
			return 0, ErrConnClosed
		}
		p = p[k:n]
	} else {
		p = p[:n]
	}
	if len(p) > 0 {
		x.queue = append(x.queue, h2item{mem: append([]byte(nil), p...)})
		x.queued += len(p)
		x.hc.waitWindow(x)
	}
	if x.clen >= 0 && x.written == x.clen {
		// The body is complete and End usually follows at once (a proxy relaying
		// its upstream's last piece): flushing at the end of the loop's iteration lets
		// END_STREAM ride on this DATA frame instead of an empty one of its own.
		x.hc.kickLater()
	} else {
		x.hc.kick()
	}
	return n, err
}

// SendFile queues n bytes of fd from off; they are read with pread in chunks as the
// stream's window opens (DATA frames cannot carry sendfile(2) output).
func (x *h2x) SendFile(fd int, off, n int64, release func()) {
	ok, _ := x.bodyOK()
	if !ok || n <= 0 {
		if release != nil {
			release()
		}
		return
	}
	if x.clen >= 0 && x.written+n > x.clen {
		n = x.clen - x.written
	}
	x.written += n
	x.queue = append(x.queue, h2item{file: true, fd: fd, off: off, n: n, release: release})
	x.queued += int(n)
	x.send()
	x.hc.kick()
}

// send moves queued output into the stream while its windows allow, then sends
// END_STREAM (or the trailers) once End was called and the queue is empty.
func (x *h2x) send() {
	if x.closed || x.ended {
		return
	}
	for len(x.queue) > 0 {
		it := &x.queue[0]
		if it.file && len(it.mem) < h2FrameRefill && it.n > 0 {
			if !x.readChunk(it) {
				return
			}
		}
		k, err := x.hc.c.WriteData(x.id, it.mem, false)
		if err != nil {
			x.abandon(ErrConnClosed)
			return
		}
		if k > 0 {
			x.hc.progress(x)
		}
		it.mem = it.mem[k:]
		x.queued -= k
		if len(it.mem) > 0 {
			x.hc.waitWindow(x)
			return
		}
		if !it.file || it.n == 0 {
			x.popItem()
		}
	}
	x.hc.unwait(x)
	if x.onDrain != nil {
		f := x.onDrain
		x.onDrain = nil
		f()
	}
	if x.endWant && len(x.queue) == 0 && !x.ended {
		x.finish()
	}
}

// h2FrameRefill is the unsent rest of a file chunk below which the next piece of the
// file is read behind it: DATA frames then span chunk boundaries instead of ending
// each chunk with a frame of its odd remainder (16,383 octets and 1, for a 64 KiB
// chunk through a 65,535-octet window).
const h2FrameRefill = 16 << 10

// readChunk reads the next piece of the file at the front of the queue into the
// pooled chunk buffer, behind the unsent rest of the previous piece (moved to the
// front). A read error or a file that ended early resets the stream.
func (x *h2x) readChunk(it *h2item) bool {
	if x.chunk == nil {
		x.chunk = pool.Get(PumpChunk)[:PumpChunk]
	}
	k := copy(x.chunk, it.mem)
	b := x.chunk[k : k+int(min(int64(len(x.chunk)-k), it.n))]
	m, err := preadFull(it.fd, b, it.off)
	if m < len(b) || err != nil {
		x.hc.c.ResetStream(x.id, http2.ErrCodeInternal)
		x.abandon(ErrFileShrank)
		x.hc.kick()
		return false
	}
	x.hc.ls.fileReadBytes.Add(uint64(m))
	it.mem = x.chunk[:k+m]
	it.off += int64(m)
	it.n -= int64(m)
	return true
}

// popItem drops the front item, releasing its file and the chunk buffer when no file
// follows.
func (x *h2x) popItem() {
	it := x.queue[0]
	x.queue[0] = h2item{}
	x.queue = x.queue[1:]
	if it.file && it.release != nil {
		it.release()
	}
	if len(x.queue) == 0 {
		x.queue = nil
		x.putChunk()
	}
}

func (x *h2x) putChunk() {
	if x.chunk != nil {
		pool.Put(x.chunk)
		x.chunk = nil
	}
}

// End completes the response once queued output has gone: END_STREAM, or the trailers.
func (x *h2x) End() {
	if x.closed || x.endWant {
		return
	}
	if !x.headSent {
		if x.clen < 0 {
			x.clen = 0
		}
		x.WriteHeader(x.status)
	}
	x.endWant = true
	switch {
	case x.ended:
		x.done()
	case len(x.queue) == 0:
		x.finish()
	}
	x.hc.kick()
}

// finish sends the end of the response. A body shorter than its declared length
// cannot be repaired: the stream is reset instead.
func (x *h2x) finish() {
	c := x.hc.c
	switch {
	case x.clen >= 0 && x.written < x.clen && !x.isHead:
		c.ResetStream(x.id, http2.ErrCodeInternal)
	case len(x.trailer.kv) > 0:
		fields := x.hc.ls.h2fields[:0]
		for _, f := range x.trailer.kv {
			if http1.ValidField(f.name, f.value) && !http1.ForbiddenTrailer([]byte(f.name)) {
				fields = append(fields, http2.Field{Name: f.name, Value: f.value})
			}
		}
		_ = c.WriteTrailers(x.id, fields)
		x.hc.ls.h2fields = clearFields(fields)
	default:
		_, _ = c.WriteData(x.id, nil, true)
	}
	x.ended = true
	x.done()
}

// h2DiscardMax and h2DiscardTime bound the request body a stream reads and drops after
// its response ended (a 413, a 401, a respond route answering a large POST): a client
// that would have to send more is told to stop with RST_STREAM NO_ERROR at once, and
// one still sending after h2DiscardTime (or timeouts.body, if shorter) then.
const (
	h2DiscardMax  = 8 << 20
	h2DiscardTime = 5 * time.Second
)

// done forgets a completed exchange. A client still sending a body nobody reads is let
// finish, as nginx lets it, while what remains is at most h2DiscardMax octets and it
// comes within h2DiscardTime: the octets are read and dropped (so the stream's errors
// are still detected) and returned to flow control, held ones and those left unread
// past the body limit included. Otherwise it is told to stop with RST_STREAM NO_ERROR
// (RFC 9113 §8.1), which clients such as curl 7.88 take as a failed transfer (error
// 92) even after a complete response: HTTP/1.1's clients see the same answer.
func (x *h2x) done() {
	x.observed()
	x.stopBody()
	if !x.s.BodyDone() && !x.closed {
		x.discarded = 0
		if cl := x.s.ContentLength; cl >= 0 && cl-x.bodyRead > h2DiscardMax {
			x.hc.c.ResetStream(x.id, http2.ErrCodeNo)
		} else {
			x.hc.c.Consumed(x.id, math.MaxInt) // all the stream left unconsumed
			d := h2DiscardTime
			if bt := x.hc.h.srv.opts.BodyTimeout; bt > 0 {
				d = min(d, bt)
			}
			x.discardTimer = x.hc.ec.Loop().AfterFunc(d, x.discardTimedOut)
		}
	}
	x.held, x.onBody, x.onDrain, x.onClose, x.onEOF = nil, nil, nil, nil, nil
	x.hc.streamGone(x)
}

// discard drops body bytes that arrive after the response ended, returning them to
// flow control, until h2DiscardMax octets were dropped.
func (x *h2x) discard(p []byte, end bool) {
	x.discarded += int64(len(p))
	if x.discarded > h2DiscardMax {
		x.stopDiscard()
		x.hc.c.ResetStream(x.id, http2.ErrCodeNo)
		return
	}
	x.hc.c.Consumed(x.id, len(p))
	if end {
		x.stopDiscard()
	}
}

// stopDiscard disarms the discard timer.
func (x *h2x) stopDiscard() {
	if x.discardTimer != nil {
		x.discardTimer.Stop()
	}
}

// discardTimedOut stops a client that still sends a body after h2DiscardTime.
func (x *h2x) discardTimedOut() {
	if x.closed || x.hc.closed || x.s.BodyDone() {
		return
	}
	x.hc.c.ResetStream(x.id, http2.ErrCodeNo)
	x.hc.kick()
}

// abandon ends the exchange because the stream or the connection went first: queued
// files are released and OnClose runs.
func (x *h2x) abandon(err error) {
	if x.closed {
		return
	}
	x.closed = true
	x.stopBody()
	x.stopDiscard()
	x.written -= int64(x.queued) // what never reached the stream was not sent
	x.observed()
	for len(x.queue) > 0 {
		x.popItem()
	}
	x.putChunk()
	x.queued = 0
	x.held, x.onBody, x.onDrain, x.onEOF = nil, nil, nil, nil
	x.hc.streamGone(x)
	if f := x.onClose; f != nil && !x.ended {
		x.onClose = nil
		f(err)
	}
}

// Respond writes a complete response with a content-length and ends it.
func (x *h2x) Respond(status int, contentType string, body []byte) {
	if x.headSent || x.endWant || x.closed {
		return
	}
	if contentType != "" {
		x.hdr.Set("Content-Type", contentType)
	}
	x.clen = int64(len(body))
	x.WriteHeader(status)
	_, _ = x.Write(body)
	x.End()
}

// Error writes a small text/plain response and ends it; after the head it resets the
// stream instead.
func (x *h2x) Error(status int, msg string) {
	if x.headSent {
		if !x.endWant && !x.closed {
			if !x.ended {
				x.hc.c.ResetStream(x.id, http2.ErrCodeInternal)
			}
			x.ended, x.endWant = true, true
			x.done()
			x.hc.kick()
		}
		return
	}
	text := http1.StatusText(status)
	if msg != "" {
		text += ": " + msg
	}
	x.hdr.Reset()
	x.Respond(status, "text/plain; charset=utf-8", []byte(text+"\n"))
}

// OnDrain runs f once the stream's queued output has gone into the connection.
func (x *h2x) OnDrain(f func()) {
	if len(x.queue) == 0 {
		x.hc.ec.Loop().Post(func() {
			if !x.closed {
				f()
				x.hc.kick()
			}
		})
		return
	}
	x.onDrain = f
}

// Buffered reports the stream's queued output (waiting for window or output room).
func (x *h2x) Buffered() int { return x.queued }

// HeadSent reports whether the final head has been written.
func (x *h2x) HeadSent() bool { return x.headSent }

// Ended reports whether End was called (what is queued still goes out).
func (x *h2x) Ended() bool { return x.endWant }

// Closed reports whether the stream was reset or the connection closed.
func (x *h2x) Closed() bool { return x.closed }

// OnClose registers f to run if the stream or connection goes before the response ends.
func (x *h2x) OnClose(f func(err error)) { x.onClose = f }

// Detach lets the handler return and finish later; the request is already owned.
func (x *h2x) Detach() {}

// Post runs f on the connection's loop unless the stream has gone by then, then moves
// the output it produced to the socket. Safe from any goroutine.
func (x *h2x) Post(f func()) {
	x.hc.ec.Loop().Post(func() {
		if !x.closed {
			f()
			x.hc.kick()
		}
	})
}
