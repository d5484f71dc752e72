package server

import (
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
)

// Request-level errors returned by Ctx methods. They concern one response only.
var (
	// ErrEnded is returned by writes after End.
	ErrEnded = errors.New("server: response already ended")
	// ErrBodyTooLong is returned when a write exceeds the declared Content-Length.
	ErrBodyTooLong = errors.New("server: response body longer than its Content-Length")
	// ErrConnClosed is returned by writes after the client connection closed.
	ErrConnClosed = errors.New("server: client connection closed")
)

// Ctx is one request on one connection and the means to answer it. Its methods must
// be called on the connection's loop: inside ServeGale, or later from a closure run
// with Post. A Ctx is valid until its response ends (End, Respond, Error) or the
// connection closes; it is recycled afterwards.
type Ctx struct {
	cn   *conn
	ec   *engine.Conn
	pump *FilePump // nil unless files must be read (a stream that cannot sendfile)
	req  *http1.Request

	hdr       Header
	trailer   Header
	status    int
	clen      int64 // response Content-Length, -1 unknown
	written   int64 // body bytes written
	discarded int64 // request body bytes dropped after the response ended
	unsent    int64 // queued response bytes the connection closed on (BodyBytes)

	body         http1.BodyReader
	onBody       func(p []byte, end bool)
	onDrain      func()
	onClose      func(err error)
	onEOF        func() // the client half-closed while the response is produced
	onBodyErr    func(err error)
	bodyBuf      []byte
	owned        []byte           // storage for a detached request copy
	ownedReq     http1.Request    // the detached request copy
	obs          ResponseObserver // told when the response ends; nil when none
	began        time.Time        // when Observe was called
	remote       netip.AddrPort
	upstream     netip.AddrPort // set by the proxy (SetUpstream), for logs
	upstreamTime time.Duration
	respTimeout  time.Duration // SetResponseTimeout's override; 0: Options.ResponseTimeout
	keepAlive    bool
	isHead       bool
	hasBody      bool
	bodyDone     bool
	bodyPaused   bool
	chunked      bool
	cutShort     bool // cut: End sends no last chunk
	headSent     bool
	ended        bool
	detached     bool
	closed       bool
	sent100      bool
	waiting      bool // ended; its observer waits until its output is sent (conn.observeLater)
}

func (c *Ctx) init(cn *conn, ec *engine.Conn, req *http1.Request) {
	c.cn, c.ec, c.req = cn, ec, req
	c.pump = cn.pump()
	c.status = 200
	c.clen = -1
	c.keepAlive = req.KeepAlive
	c.isHead = string(req.Method) == "HEAD"
}

func (c *Ctx) reset() {
	hdr, tr, bb := c.hdr, c.trailer, c.bodyBuf
	hdr.Reset()
	tr.Reset()
	*c = Ctx{hdr: hdr, trailer: tr, bodyBuf: bb[:0]}
}

// release drops references held by a detached Ctx; it is not reused, because the
// goroutine that held it may still look at it.
func (c *Ctx) release() {
	c.onBody, c.onDrain, c.onClose, c.onEOF, c.onBodyErr = nil, nil, nil, nil, nil
}

// Request returns the parsed request. Its byte slices are views into the loop's read
// buffer and are valid only during ServeGale, unless the Ctx was detached (then they
// are owned copies, valid until the response ends).
func (c *Ctx) Request() *http1.Request { return c.req }

// IsHead reports whether the request is HEAD; body writes are then discarded.
func (c *Ctx) IsHead() bool { return c.isHead }

// CloseDelimited reports whether the response head went out without framing for
// a body that follows (an HTTP/1.0 client's response of unknown length): its end
// is the close of the connection, so a handler that cannot complete the body must
// not close the connection in order (the client would take what it got for the
// whole body) but reset it.
func (c *Ctx) CloseDelimited() bool {
	return c.headSent && !c.chunked && c.clen < 0 && !c.isHead && bodyAllowed(c.status)
}

// Header returns the response header list, to fill before WriteHeader.
func (c *Ctx) Header() *Header { return &c.hdr }

// Trailer returns the response trailers, sent after a chunked body. Fields that RFC
// 9110 §6.5.1 keeps out of trailers (http1.ForbiddenTrailer) are not sent.
func (c *Ctx) Trailer() *Header { return &c.trailer }

// Now returns the loop's cached clock.
func (c *Ctx) Now() time.Time { return c.ec.Loop().Now() }

// RemoteAddr returns the client's address.
func (c *Ctx) RemoteAddr() netip.AddrPort { return c.ec.RemoteAddr() }

// Loop returns the event loop that owns the request.
func (c *Ctx) Loop() *engine.Loop { return c.ec.Loop() }

// Conn returns the engine connection (for protocol upgrades).
func (c *Ctx) Conn() *engine.Conn { return c.ec }

// Closed reports whether the client connection has gone.
func (c *Ctx) Closed() bool { return c.closed }

// Ended reports whether the response is complete.
func (c *Ctx) Ended() bool { return c.ended }

// HeadSent reports whether the status line and headers have been written.
func (c *Ctx) HeadSent() bool { return c.headSent }

// Buffered reports the connection's queued output in bytes.
func (c *Ctx) Buffered() int {
	if c.pump != nil {
		return c.pump.Buffered()
	}
	return c.ec.Buffered()
}

// SetContentLength declares the body length. Without it the body is chunked for
// HTTP/1.1 clients and delimited by closing the connection for HTTP/1.0 clients.
func (c *Ctx) SetContentLength(n int64) { c.clen = n }

// SetKeepAlive(false) closes the connection after this response.
func (c *Ctx) SetKeepAlive(on bool) { c.keepAlive = c.keepAlive && on }

// Post runs f on the request's loop unless the connection has closed by then. It is
// safe from any goroutine; it is how asynchronous work completes a response.
func (c *Ctx) Post(f func()) {
	c.ec.Loop().Post(func() {
		if !c.closed {
			f()
		}
	})
}

// OnClose registers f to run (on the loop) if the connection closes before the
// response ends.
func (c *Ctx) OnClose(f func(err error)) { c.onClose = f }

// OnPeerEOF registers f to run (on the loop) if the client closes its sending side
// before the response ends; net/http semantics cancel the request context then.
func (c *Ctx) OnPeerEOF(f func()) { c.onEOF = f }

// OnDrain registers f to run once when queued output falls to the low-water mark;
// streaming producers use it to resume after Buffered grew large.
func (c *Ctx) OnDrain(f func()) {
	c.onDrain = f
	c.ec.WantDrain()
	if c.cn.state == stWait {
		// Waiting for the client, not for the handler: the engine's write timeout
		// bounds each wait for progress, so the response timeout does not run.
		c.ec.CancelTimeout()
	}
}

// OnBody streams the request body to f as it arrives: f(p, false) for each piece (p
// is valid only during the call) and f(nil, true) at the end. With no body f(nil,
// true) is called at once. Sends 100 Continue if the client expects it.
func (c *Ctx) OnBody(f func(p []byte, end bool)) {
	c.onBody = f
	if !c.hasBody || c.bodyDone {
		f(nil, true)
		return
	}
	c.continue100()
	c.bodyTimer()
	if c.detached {
		c.cn.resumeRead(c.ec)
	}
}

// ReadBody collects the whole request body (bounded by the server's body limit) and
// calls f with it; body is valid until the response ends.
func (c *Ctx) ReadBody(f func(body []byte)) {
	c.OnBody(func(p []byte, end bool) {
		c.bodyBuf = append(c.bodyBuf, p...)
		if end {
			f(c.bodyBuf)
		}
	})
}

// PauseBody stops delivery of body pieces until ResumeBody.
func (c *Ctx) PauseBody() {
	c.bodyPaused = true
	c.ec.PauseRead()
	c.bodyTimer()
}

// ResumeBody restarts body delivery.
func (c *Ctx) ResumeBody() {
	c.bodyPaused = false
	c.bodyTimer()
	c.cn.resumeRead(c.ec)
}

// bodyTimer arms the connection's timer while the request body is due. The body
// timeout measures the client, so it runs only while the server reads the body: the
// handler asked for it and has not paused it. While the handler holds the body (it
// has not asked for it yet, or paused it) the handler owes the next step, and the
// response timeout runs instead (504 if it expires before the head; HTTP/2 streams do
// the same). It used to be the body timeout throughout, so a handler that read the
// body later than that (a proxy waiting for its upstream, a net/http handler working
// first) had its client answered 408 although the client had sent everything, or
// was waiting for the 100 Continue that only the reading sends.
func (c *Ctx) bodyTimer() {
	if c.cn.cur != c || c.cn.state != stBody || c.ec.Closed() {
		return
	}
	if c.ended || c.onBody != nil && !c.bodyPaused {
		c.ec.SetTimeout(c.cn.ls.srv.opts.BodyTimeout)
		return
	}
	c.armResponseTimeout()
}

func (c *Ctx) continue100() {
	if c.req.Expect100 && !c.sent100 && !c.headSent {
		c.sent100 = true
		c.write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
	}
}

// WriteInformational sends a 1xx response (103 Early Hints, for example) with the
// given header lines before the final response. It is ignored for HTTP/1.0 clients.
// A 100 Continue is sent at most once: one written here (a proxy relaying its
// upstream's) stands for the one OnBody would send, and a second is dropped.
func (c *Ctx) WriteInformational(status int, h *Header) {
	if c.headSent || c.req.Minor == 0 || status < 100 || status > 199 || status == 101 {
		return
	}
	if status == 100 {
		if c.sent100 {
			return
		}
		c.sent100 = true
	}
	b := http1.AppendStatusLine(c.cn.ls.scratch[:0], 1, status)
	if h != nil {
		for _, f := range h.kv {
			if http1.ValidField(f.name, f.value) {
				b = http1.AppendHeader(b, f.name, f.value)
			}
		}
	}
	b = append(b, "\r\n"...)
	c.write(b)
	c.cn.ls.scratch = b
}

// bodyAllowed reports whether the status permits a body (RFC 9110 §6.4.1).
func bodyAllowed(status int) bool {
	return status >= 200 && status != 204 && status != 304
}

// WriteHeader sends the status line and headers. The server adds Date and Server
// (unless the handler set its own, which then replaces the server's), Connection
// and the body framing (Content-Length or chunked).
func (c *Ctx) WriteHeader(status int) {
	if c.headSent || c.closed {
		return
	}
	if status < 200 || status > 999 {
		status = 500
	}
	c.status = status
	c.headSent = true
	if v := c.hdr.Get("Content-Length"); v != "" {
		if n, ok := http1.ParseDecimal(v); ok && c.clen < 0 {
			c.clen = n
		}
		c.hdr.Del("Content-Length")
	}
	c.hdr.Del("Transfer-Encoding")
	if v := c.hdr.Get("Connection"); v != "" {
		if http1.ListHasToken([]byte(v), "close") {
			c.keepAlive = false
		}
		c.hdr.Del("Connection")
	}
	ls := c.cn.ls
	b := http1.AppendStatusLine(ls.scratch[:0], 1, status)
	if !c.hdr.replaces("Date") {
		b = http1.AppendDateAt(b, c.ec.Loop().Now())
	}
	if !c.hdr.replaces("Server") {
		b = append(b, ls.srv.serverH...)
	}
	for _, f := range c.hdr.kv {
		if http1.ValidField(f.name, f.value) {
			b = http1.AppendHeader(b, f.name, f.value)
		}
	}
	b = append(b, c.hdr.raw...)
	switch {
	case !bodyAllowed(status):
		c.clen = 0
	case c.clen >= 0:
		b = append(b, "Content-Length: "...)
		b = appendInt(b, c.clen)
		b = append(b, "\r\n"...)
	case c.isHead:
		// A HEAD response never has a body (RFC 9110 §9.3.2), so a length that is not
		// known yet needs no framing at all: no chunked coding (its last chunk would be
		// read as the start of the next response) and no close-delimiting.
	case c.req.Minor >= 1:
		c.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		c.keepAlive = false
	}
	if c.cn.ls.srv.draining.Load() {
		c.keepAlive = false
	}
	if c.onBody == nil && c.cn.cur == c && c.cn.state == stBody && c.unreadBodyCloses() {
		// The handler answers without having asked for the body, and the rest of it
		// will not be dropped (responseEnded closes): say so in the head, so that a
		// client does not pipeline requests that will never be answered.
		c.keepAlive = false
	}
	if !c.keepAlive {
		b = append(b, "Connection: close\r\n"...)
	} else if c.req.Minor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	c.write(b)
	ls.scratch = b
	c.awaitHandler()
}

// awaitHandler arms the response timeout while the request has been read and the
// handler, gone asynchronous, owes output. A handler waiting for the client to take
// queued output (OnDrain) is under the write timeout instead.
func (c *Ctx) awaitHandler() {
	switch {
	case c.ended:
	case c.cn.state == stBody:
		// While the body is read its timer is the body timeout, which only the
		// client's bytes restart: a handler's writes must not.
		if c.onBody == nil || c.bodyPaused {
			c.armResponseTimeout()
		}
	case c.detached && c.cn.state == stWait && c.onDrain == nil:
		c.armResponseTimeout()
	}
}

// armResponseTimeout arms the response timeout (SetResponseTimeout's, else the
// server's; a negative one disarms the timer).
func (c *Ctx) armResponseTimeout() {
	d := c.respTimeout
	if d == 0 {
		d = c.cn.ls.srv.opts.ResponseTimeout
	}
	if d < 0 {
		c.ec.CancelTimeout()
		return
	}
	c.ec.SetTimeout(d)
}

// Write sends body bytes (copied, so p may be reused), writing the head first if
// needed. Writes past a declared Content-Length fail with ErrBodyTooLong.
func (c *Ctx) Write(p []byte) (int, error) {
	if c.closed || c.ec.Closed() {
		return 0, ErrConnClosed
	}
	if c.ended {
		return 0, ErrEnded
	}
	if !c.headSent {
		c.WriteHeader(c.status)
	}
	if c.isHead || !bodyAllowed(c.status) || len(p) == 0 {
		return len(p), nil
	}
	n := len(p)
	var err error
	if c.clen >= 0 && c.written+int64(n) > c.clen {
		n = int(c.clen - c.written)
		err = ErrBodyTooLong
	}
	if c.chunked {
		ls := c.cn.ls
		b := strconv.AppendInt(ls.scratch[:0], int64(n), 16)
		b = append(b, "\r\n"...)
		c.write(b)
		c.write(p[:n])
		ls.scratch = b
		if c.write(crlf) != nil {
			return 0, ErrConnClosed
		}
	} else if c.write(p[:n]) != nil {
		return 0, ErrConnClosed
	}
	c.written += int64(n)
	c.awaitHandler()
	return n, err
}

var crlf = []byte("\r\n")

// WriteString is Write for a string.
func (c *Ctx) WriteString(s string) (int, error) { return c.Write([]byte(s)) }

// SendFile sends n bytes of file fd from off as body bytes with sendfile(2). release
// (may be nil) is called once when the bytes were sent or the connection closed.
func (c *Ctx) SendFile(fd int, off, n int64, release func()) {
	if c.closed || c.ended {
		if release != nil {
			release()
		}
		return
	}
	if !c.headSent {
		c.WriteHeader(c.status)
	}
	if c.isHead || !bodyAllowed(c.status) || n <= 0 {
		if release != nil {
			release()
		}
		return
	}
	if c.clen >= 0 && c.written+n > c.clen {
		n = c.clen - c.written
	}
	if c.chunked {
		ls := c.cn.ls
		b := strconv.AppendInt(ls.scratch[:0], n, 16)
		b = append(b, "\r\n"...)
		c.write(b)
		ls.scratch = b
		c.sendFile(fd, off, n, release)
		c.write(crlf)
	} else {
		c.sendFile(fd, off, n, release)
	}
	c.written += n
	c.awaitHandler()
}

// End completes the response. A response shorter than its declared Content-Length
// cannot be repaired, so the connection is closed after it.
func (c *Ctx) End() {
	if c.ended || c.closed {
		return
	}
	if !c.headSent {
		if c.clen < 0 {
			c.clen = 0
		}
		c.WriteHeader(c.status)
	}
	if c.chunked && !c.cutShort {
		c.write(http1.AppendLastChunk(c.cn.ls.scratch[:0], c.trailerFields()))
	} else if c.clen >= 0 && c.written < c.clen && !c.isHead && bodyAllowed(c.status) {
		c.keepAlive = false
	}
	c.ended = true
	if c.obs != nil && c.cn.unsentBytes(c.ec) > observeAfterFlush {
		c.cn.observeLater(c)
	} else {
		c.observed()
	}
	c.cn.responseEnded(c.ec, c)
}

func (c *Ctx) trailerFields() []http1.Header {
	if len(c.trailer.kv) == 0 {
		return nil
	}
	out := make([]http1.Header, 0, len(c.trailer.kv))
	for _, f := range c.trailer.kv {
		if http1.ValidField(f.name, f.value) && !http1.ForbiddenTrailer([]byte(f.name)) {
			out = append(out, http1.Header{Name: []byte(f.name), Value: []byte(f.value)})
		}
	}
	return out
}

// ResponseObserver is told about every response it was attached to with
// Observe (metrics, access logs), on HTTP/1.1 (*Ctx) and HTTP/2 streams alike.
// ResponseDone runs on the request's loop, once, when the response ends or its
// connection (or stream) closes before that (then x.Ended is false); it must not
// block and must not keep x.
type ResponseObserver interface {
	ResponseDone(x Observed)
}

// Observe attaches o to this request and records the current time as its
// start (Began). Attaching another observer replaces the first.
func (c *Ctx) Observe(o ResponseObserver) {
	c.obs = o
	c.began = time.Now()
}

// Began returns when Observe was called, or the zero time.
func (c *Ctx) Began() time.Time { return c.began }

// Status returns the response status: the one written, or the one that
// would be written implicitly.
func (c *Ctx) Status() int { return c.status }

// BodyBytes returns how many response body bytes were sent: those written, less
// what was still queued when the connection closed. It is nginx's
// $body_bytes_sent, except that a chunked body counts its data without the chunk
// framing, and that an aborted response whose last bytes were within the final
// observeAfterFlush of output when it ended counts them as sent.
func (c *Ctx) BodyBytes() int64 { return max(0, c.written-c.unsent) }

// observed tells the observer, if any, that the response is over.
func (c *Ctx) observed() {
	if o := c.obs; o != nil {
		c.obs = nil
		o.ResponseDone(c)
	}
}

// SetStatus sets the status used when the head is written implicitly.
func (c *Ctx) SetStatus(status int) { c.status = status }

// Respond writes a complete response with a Content-Length in one piece.
func (c *Ctx) Respond(status int, contentType string, body []byte) {
	if c.headSent || c.ended || c.closed {
		return
	}
	if contentType != "" {
		c.hdr.Set("Content-Type", contentType)
	}
	c.clen = int64(len(body))
	c.WriteHeader(status)
	if !c.isHead && bodyAllowed(c.status) {
		c.write(body)
		c.written = int64(len(body))
	}
	c.End()
}

// Error writes a small text/plain error response. Statuses that leave the
// connection in an unknown state (400, 408, 413, 414, 431, 5xx from the protocol)
// close it. After the head it cuts the response instead (cut): the client sees it
// truncated.
func (c *Ctx) Error(status int, msg string) {
	if c.headSent {
		c.cut(errCut)
		return
	}
	switch status {
	case 400, 408, 413, 414, 431:
		c.keepAlive = false
	}
	text := http1.StatusText(status)
	if msg != "" {
		text += ": " + msg
	}
	c.hdr.Reset()
	c.Respond(status, "text/plain; charset=utf-8", []byte(text+"\n"))
}

// errCut is what OnClose hears when the server cut a response after its head.
var errCut = errors.New("server: response cut after its head")

// cut ends a response the server cannot complete after its head went out (Error after
// the head, the response timeout), so that the client sees it truncated: a body
// delimited by the close is reset (TCP RST) once what is queued for it has gone, since
// an orderly close would read as the body's end; any other closes the connection after
// what was sent, short of its Content-Length or without the last chunk. Error after the
// head used to end a chunked body with its last chunk and close a close-delimited one
// in order: both read as complete responses.
func (c *Ctx) cut(err error) {
	if c.ended || c.closed {
		return
	}
	c.keepAlive = false
	if !c.CloseDelimited() {
		c.cutShort = true
		c.End()
		return
	}
	c.ended = true
	ec := c.ec
	if c.Buffered() == 0 {
		ec.Abort(err)
		return
	}
	c.OnDrain(func() { ec.Abort(err) })
}

// detach makes the Ctx usable after ServeGale returned: the request is copied out
// of the loop's read buffer into storage the Ctx owns.
func (c *Ctx) detach() {
	if c.detached {
		return
	}
	c.detached = true
	c.owned = cloneRequest(&c.ownedReq, c.req, c.owned[:0])
	c.remote = c.ec.RemoteAddr()
	c.req = &c.ownedReq
}

// Detach lets a handler return from ServeGale and finish the response later (from
// a closure run with Post). The request is copied so that it stays valid.
func (c *Ctx) Detach() { c.detach() }

// DetachWithoutRequest is Detach for a handler that has already taken what it needs
// from Request during ServeGale (the net/http adapter builds its own request there):
// the request's byte slices (method, target, path, query, host, header fields) are
// not copied, and after ServeGale returns Request holds only the scalar fields
// (version, length, keep-alive, Expect, form) and nil slices. It saves the copy and
// its allocations. It must be called during ServeGale, before any Detach.
func (c *Ctx) DetachWithoutRequest() {
	if c.detached {
		return
	}
	c.detached = true
	c.ownedReq = *c.req
	r := &c.ownedReq
	r.Method, r.Target, r.Path, r.Query, r.NormPath, r.Host, r.Headers = nil, nil, nil, nil, nil, nil, nil
	c.remote = c.ec.RemoteAddr()
	c.req = r
}

// cloneRequest copies src into dst with every byte slice moved into buf (grown as
// needed), and returns buf.
func cloneRequest(dst, src *http1.Request, buf []byte) []byte {
	size := len(src.Method) + len(src.Target) + len(src.Host)
	for _, h := range src.Headers {
		size += len(h.Name) + len(h.Value)
	}
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	hdrs := dst.Headers[:0]
	*dst = *src
	put := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	dst.Method = put(src.Method)
	dst.Target = put(src.Target)
	dst.Host = put(src.Host)
	dst.Path = subslice(dst.Target, src.Target, src.Path)
	dst.Query = subslice(dst.Target, src.Target, src.Query)
	dst.NormPath = subslice(dst.Target, src.Target, src.NormPath) // a copy unless a view of Target
	for _, h := range src.Headers {
		hdrs = append(hdrs, http1.Header{Name: put(h.Name), Value: put(h.Value)})
	}
	dst.Headers = hdrs
	return buf
}

// subslice maps part (a view into orig) onto the same range of copied; parts that
// are not views into orig are copied separately.
func subslice(copied, orig, part []byte) []byte {
	if part == nil {
		return nil
	}
	if len(part) == 0 {
		return part[:0:0]
	}
	for i := 0; i+len(part) <= len(orig); i++ {
		if &orig[i] == &part[0] {
			return copied[i : i+len(part) : i+len(part)]
		}
	}
	return append([]byte(nil), part...)
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }
