package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/gale-server/gale/http1"
)

// NetHTTP runs an http.Handler (the standard mux, chi, gorilla/mux …) unchanged on
// the pool p. Request bodies stream from the loop with backpressure; responses are
// buffered 4 KiB at a time like net/http's own server and posted back to the loop;
// Flush, Hijack, request-context cancellation when the client goes away, and
// trailers (declared or with http.TrailerPrefix) work as net/http users expect.
func NetHTTP(h http.Handler, p *Pool) Handler {
	return &netHTTP{h: h, pool: p}
}

type netHTTP struct {
	h    http.Handler
	pool *Pool
}

// responseBufSize is how much response body is collected before it goes to the loop.
const responseBufSize = 4096

// Output posted to the loop but not yet written beyond this waits for the socket.
const adapterWindow = 1 << 20

func (a *netHTTP) ServeGale(c *Ctx) {
	c.Detach()
	// Only what must happen on the loop happens here; the net/http request is built
	// on the pool goroutine, off the loop.
	ctx, cancel := context.WithCancel(context.Background())
	rw := &responseWriter{c: c, header: http.Header{}, status: 200, contentLength: -1, isHead: c.IsHead()}
	rw.cond = sync.NewCond(&rw.mu)
	if r := c.Request(); r.Chunked || r.ContentLength > 0 {
		rw.body = newBodyPipe(c, nil)
	}
	gone := func(err error) {
		cancel()
		rw.connClosed(err)
	}
	c.OnClose(gone)
	c.OnBodyError(gone)
	c.OnPeerEOF(cancel)
	if !a.pool.TrySubmit(func() {
		defer cancel()
		req, err := toHTTPRequest(c, rw.body)
		if err != nil {
			rw.post(0, func() { c.Error(400, err.Error()) })
			return
		}
		req = req.WithContext(ctx)
		rw.req = req
		if rw.body != nil {
			rw.body.req = req
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					rw.abort()
					return
				}
				buf := make([]byte, 16<<10)
				buf = buf[:runtimeStack(buf)]
				rw.panicked(fmt.Sprintf("%v\n%s", v, buf))
				return
			}
			rw.finish()
		}()
		a.h.ServeHTTP(rw, req)
	}) {
		cancel()
		c.Error(503, "worker pool is full")
	}
}

// protoString is the Proto of an HTTP/1.0 and an HTTP/1.1 request, by minor version.
var protoString = [2]string{"HTTP/1.0", "HTTP/1.1"}

// toHTTPRequest builds the net/http view of a detached request; body, when not nil,
// carries the request body. It reads only the detached (immutable) request, so it may
// run off the loop.
func toHTTPRequest(c *Ctx, body *bodyPipe) (*http.Request, error) {
	r := c.Request()
	target := string(r.Target)
	var u *url.URL
	var err error
	if r.Form == http1.FormAuthority {
		u = &url.URL{Host: target}
	} else {
		u, err = url.ParseRequestURI(target)
		if err != nil {
			return nil, fmt.Errorf("invalid request target")
		}
	}
	req := &http.Request{
		Method:     string(r.Method),
		URL:        u,
		Proto:      protoString[r.Minor&1],
		ProtoMajor: 1,
		ProtoMinor: r.Minor,
		Header:     make(http.Header, len(r.Headers)),
		Host:       string(r.Host),
		RequestURI: target,
		RemoteAddr: c.remote.String(),
		Close:      !r.KeepAlive,
	}
	for _, f := range r.Headers {
		k := http.CanonicalHeaderKey(string(f.Name))
		if k == "Host" {
			continue
		}
		req.Header[k] = append(req.Header[k], string(f.Value))
	}
	switch {
	case r.Chunked:
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
		if tr := req.Header.Values("Trailer"); len(tr) > 0 {
			req.Trailer = http.Header{}
			for _, v := range tr {
				for _, name := range strings.Split(v, ",") {
					if name = strings.TrimSpace(name); name != "" {
						req.Trailer[http.CanonicalHeaderKey(name)] = nil
					}
				}
			}
		}
		req.Body = body
	case r.ContentLength > 0:
		req.ContentLength = r.ContentLength
		req.Body = body
	default:
		req.Body = http.NoBody
	}
	return req, nil
}

// bodyPipe carries the request body from the loop to the handler goroutine. The
// loop appends copies of arriving pieces; above bodyHigh it pauses reading, and the
// reader resumes it below bodyLow. Fields are guarded by mu.
type bodyPipe struct {
	c       *Ctx
	req     *http.Request
	mu      sync.Mutex
	cond    *sync.Cond
	chunks  [][]byte
	size    int
	started bool
	eof     bool
	closed  bool
	paused  bool
	err     error
}

const (
	bodyHigh = 256 << 10
	bodyLow  = 64 << 10
)

func newBodyPipe(c *Ctx, req *http.Request) *bodyPipe {
	p := &bodyPipe{c: c, req: req}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// deliver runs on the loop for every body piece.
func (p *bodyPipe) deliver(b []byte, end bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed && len(b) > 0 {
		p.chunks = append(p.chunks, append([]byte(nil), b...))
		p.size += len(b)
	}
	if end {
		p.eof = true
		if p.req.Trailer != nil {
			for _, t := range p.c.body.Trailers() {
				k := http.CanonicalHeaderKey(string(t.Name))
				p.req.Trailer[k] = append(p.req.Trailer[k], string(t.Value))
			}
		}
	}
	if p.size > bodyHigh && !p.paused && !end {
		p.paused = true
		p.c.PauseBody()
	}
	p.cond.Broadcast()
}

// fail runs on the loop when the connection dies.
func (p *bodyPipe) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *bodyPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		p.started = true
		p.c.Post(func() { p.c.OnBody(p.deliver) })
	}
	for len(p.chunks) == 0 && !p.eof && p.err == nil && !p.closed {
		p.cond.Wait()
	}
	if p.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if len(p.chunks) == 0 {
		if p.eof {
			return 0, io.EOF
		}
		return 0, p.err
	}
	n := copy(b, p.chunks[0])
	if n == len(p.chunks[0]) {
		p.chunks[0] = nil
		p.chunks = p.chunks[1:]
	} else {
		p.chunks[0] = p.chunks[0][n:]
	}
	p.size -= n
	if p.paused && p.size < bodyLow {
		p.paused = false
		p.c.Post(p.c.ResumeBody)
	}
	return n, nil
}

func (p *bodyPipe) Close() error {
	p.mu.Lock()
	p.closed = true
	p.chunks = nil
	wasPaused := p.paused
	p.paused = false
	p.mu.Unlock()
	if wasPaused {
		p.c.Post(p.c.ResumeBody)
	}
	return nil
}

// errConnGone is reported to writers after the client went away.
var errConnGone = errors.New("server: client connection closed")

// responseWriter is the http.ResponseWriter of the adapter. The handler goroutine
// owns buf, header, status, wroteHeader and written; mu guards the fields shared
// with the loop (inflight, blocked, closed).
type responseWriter struct {
	c             *Ctx
	req           *http.Request
	body          *bodyPipe
	header        http.Header
	snapshot      http.Header // header as of WriteHeader
	status        int
	wroteHeader   bool
	headPosted    bool
	contentLength int64
	written       int64
	isHead        bool
	buf           []byte
	hijacked      bool

	mu       sync.Mutex
	cond     *sync.Cond
	inflight int // bytes posted, not yet handed to the connection
	blocked  bool
	closed   bool
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
	_ http.Hijacker       = (*responseWriter)(nil)
)

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code >= 100 && code <= 199 && code != 101 {
		h := w.header.Clone()
		w.post(0, func() {
			var hh Header
			for k, vs := range h {
				for _, v := range vs {
					hh.Add(k, v)
				}
			}
			w.c.WriteInformational(code, &hh)
		})
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	w.wroteHeader = true
	w.status = code
	w.snapshot = w.header.Clone()
	if cl := w.snapshot.Get("Content-Length"); cl != "" {
		var n int64
		if _, err := fmt.Sscan(cl, &n); err == nil && n >= 0 {
			w.contentLength = n
		}
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(200)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		return 0, http.ErrContentLength
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return 0, errConnGone
	}
	w.written += int64(len(p))
	if w.isHead {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= responseBufSize {
		w.flushBuf(false)
	}
	return len(p), nil
}

// Flush sends the head and everything buffered.
func (w *responseWriter) Flush() {
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(200)
	}
	w.flushBuf(false)
}

// flushBuf hands the buffered body (and the head, the first time) to the loop;
// with last it also ends the response.
func (w *responseWriter) flushBuf(last bool) {
	data := w.buf
	w.buf = nil
	first := !w.headPosted
	w.headPosted = true
	var hdr http.Header
	status := w.status
	if first {
		hdr = w.snapshot
		if hdr.Get("Content-Type") == "" && len(data) > 0 && hdr.Get("Content-Encoding") == "" && bodyAllowed(status) {
			hdr.Set("Content-Type", http.DetectContentType(data))
		}
		if last && w.contentLength < 0 && bodyAllowed(status) {
			w.contentLength = w.written
		}
	}
	var trailers http.Header
	if last {
		trailers = w.collectTrailers()
	}
	cl := w.contentLength
	w.post(len(data), func() {
		c := w.c
		if first {
			for k, vs := range hdr {
				if k == "Trailer" || strings.HasPrefix(k, http.TrailerPrefix) {
					continue
				}
				for _, v := range vs {
					c.Header().Add(k, v)
				}
			}
			if len(trailers) > 0 || len(hdr.Values("Trailer")) > 0 {
				c.Header().Set("Trailer", strings.Join(hdr.Values("Trailer"), ", "))
			}
			if cl >= 0 {
				c.SetContentLength(cl)
			}
			c.WriteHeader(status)
		}
		if len(data) > 0 {
			c.Write(data)
		}
		if last {
			for k, vs := range trailers {
				for _, v := range vs {
					c.Trailer().Add(k, v)
				}
			}
			c.End()
		}
	})
}

// collectTrailers gathers the values of declared trailers and of keys with
// http.TrailerPrefix, as net/http does.
func (w *responseWriter) collectTrailers() http.Header {
	var out http.Header
	add := func(k string, vs []string) {
		if out == nil {
			out = http.Header{}
		}
		out[k] = vs
	}
	if w.snapshot != nil {
		for _, v := range w.snapshot.Values("Trailer") {
			for _, name := range strings.Split(v, ",") {
				k := http.CanonicalHeaderKey(strings.TrimSpace(name))
				if vs := w.header[k]; len(vs) > 0 {
					add(k, vs)
				}
			}
		}
	}
	for k, vs := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			add(strings.TrimPrefix(k, http.TrailerPrefix), vs)
		}
	}
	return out
}

// post runs f on the loop after waiting, if needed, for the connection to take
// earlier output (the backpressure path). n is the bytes f will write.
func (w *responseWriter) post(n int, f func()) {
	w.mu.Lock()
	for (w.blocked || w.inflight > adapterWindow) && !w.closed {
		w.cond.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.inflight += n
	w.mu.Unlock()
	w.c.Post(func() {
		f()
		w.mu.Lock()
		w.inflight -= n
		if !w.blocked && w.c.Buffered() > adapterWindow/2 && !w.c.Closed() {
			w.blocked = true
			w.c.OnDrain(func() {
				w.mu.Lock()
				w.blocked = false
				w.cond.Broadcast()
				w.mu.Unlock()
			})
		}
		w.cond.Broadcast()
		w.mu.Unlock()
	})
}

// finish runs after ServeHTTP returns.
func (w *responseWriter) finish() {
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(200)
	}
	if w.body != nil {
		w.body.Close()
	}
	w.flushBuf(true)
}

// abort closes the connection without completing the response (http.ErrAbortHandler).
func (w *responseWriter) abort() {
	w.c.Post(func() { w.c.Conn().Abort(errors.New("handler aborted")) })
}

// panicked answers 500 if nothing was sent yet, else aborts the connection.
func (w *responseWriter) panicked(msg string) {
	w.c.srvLogger().Error("net/http handler panicked", "panic", msg)
	if w.headPosted {
		w.abort()
		return
	}
	w.headPosted = true
	w.post(0, func() { w.c.Error(500, "") })
}

// connClosed runs on the loop when the client connection closes.
func (w *responseWriter) connClosed(err error) {
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	if w.body != nil {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		w.body.fail(err)
	}
}

// Hijack hands the raw connection to the handler (for protocol upgrades). Bytes
// the client sent after the request head are available from the returned reader.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.headPosted {
		return nil, nil, errors.New("server: cannot hijack after the response started")
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return nil, nil, errConnGone
	}
	w.hijacked = true
	hc := newHijackedConn(w.c)
	done := make(chan error, 1)
	w.c.Loop().Post(func() {
		if w.c.Closed() {
			done <- errConnGone
			return
		}
		w.c.hijack(hc)
		done <- nil
	})
	if err := <-done; err != nil {
		return nil, nil, err
	}
	return hc, bufio.NewReadWriter(bufio.NewReader(hc), bufio.NewWriter(hc)), nil
}
