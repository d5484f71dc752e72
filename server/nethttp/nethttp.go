// Package nethttp runs net/http handlers (the standard mux, chi, gorilla/mux …)
// unchanged on gale's server. The handlers run on a bounded goroutine pool
// (server.Pool), off the event loops; request bodies and responses travel between
// the loop and the handler's goroutine through a pipe with backpressure both ways.
// The package uses only exported hooks of package server.
package nethttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/server"
)

// Adapt returns a server.Handler that runs h on the pool p, for HTTP/1.1 requests
// (ServeGale) and HTTP/2 streams (ServeExchange, see h2.go). Request bodies stream
// from the loop with backpressure; responses are buffered 4 KiB at a time like
// net/http's own server and posted back to the loop; Flush, Hijack (HTTP/1 only),
// http.ResponseController (deadlines, full duplex, FlushError), CloseNotify,
// request-context cancellation when the client goes away or resets the stream,
// trailers (declared or with http.TrailerPrefix), r.TLS and io.Copy from a file
// (io.ReaderFrom, which sends it as a file segment) work as net/http users expect.
// When the pool is full the request gets 503 at once. As on net/http's
// server without a WriteTimeout, nothing bounds how long a handler may take (long
// polls and event streams run until they return or the client goes); AdaptOptions
// sets a bound on a handler's silence.
func Adapt(h http.Handler, p *server.Pool) server.Handler {
	return AdaptOptions(h, p, Options{})
}

type adapter struct {
	h       http.Handler
	pool    *server.Pool
	timeout time.Duration   // Options.ResponseTimeout
	base    context.Context // Options.BaseContext's, or nil
	vals    context.Context // base without its cancellation, for Value
	srv     *http.Server    // the stand-in of http.ServerContextKey: not serving, Handler h
}

var (
	_ server.Handler         = (*adapter)(nil)
	_ server.ExchangeHandler = (*adapter)(nil)
)

// sniffLen is how much of a body http.DetectContentType looks at.
const sniffLen = 512

// responseBufSize is how much response body is collected before it goes to the loop.
const responseBufSize = 4096

// ServeGale runs on the loop. It builds the net/http request there, from the
// request head still in the loop's read buffer (the strings net/http needs are
// copies anyway), so the Ctx is detached without a second copy of the head.
func (a *adapter) ServeGale(c *server.Ctx) {
	x := &exchange{ex: c, c: c, remote: remoteString(c.RemoteAddr()), hasBody: c.Request().Chunked || c.Request().ContentLength > 0}
	if err := x.request(); err != nil {
		c.Error(400, err.Error())
		return
	}
	c.DetachWithoutRequest()
	// The adapter bounds its handlers itself (Options.ResponseTimeout), on both
	// protocols; the server's response timeout would cut long polls and event
	// streams, which net/http's server lets run.
	c.SetResponseTimeout(-1)
	x.pipe.init(x, http.ErrBodyReadAfterClose)
	x.writer(c.IsHead())
	c.OnClose(func(err error) {
		x.ctx.cancel()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		x.pipe.fail(err, errConnGone)
	})
	if x.hasBody {
		c.OnBodyError(func(err error) {
			x.ctx.cancel()
			x.pipe.fail(err, err)
		})
	}
	c.OnPeerEOF(x.ctx.cancel)
	x.tls = tlsState(c)
	a.run(x)
}

// run starts the handler on the pool, or answers 503 when the pool is full. The
// loop has built the request (x.req); the exchange is the pool's Task.
func (a *adapter) run(x *exchange) {
	x.h = a.h
	x.watch.d = a.timeout
	x.srv = a.srv
	x.ctx.x = x
	x.ctx.setBase(a.base, a.vals)
	if x.req.Method == http.MethodOptions && x.req.RequestURI == "*" {
		// As net/http's server answers it (its general OPTIONS handler), before
		// any handler: a mux would answer 400 to the asterisk.
		x.ctx.cancel()
		x.ex.SetContentLength(0)
		x.ex.WriteHeader(http.StatusOK)
		x.ex.End()
		return
	}
	if !a.pool.TrySubmitTask(x) {
		x.ctx.cancel()
		x.ex.Error(503, "worker pool is full")
		return
	}
	if lx, ok := x.ex.(loopExchange); ok {
		// The pool goroutine just readied runs on this loop's P when the loop yields
		// at the end of the iteration, and the response it posts goes out with the
		// iteration's writes: no eventfd wake-up, no second trip through epoll.
		lx.Loop().YieldBeforeWait()
	}
}

// Run serves the request with the net/http handler; on the pool goroutine.
func (x *exchange) Run() {
	defer x.ctx.cancel()
	defer x.pipe.stopDeadlines()
	x.startWatch()
	defer x.stopWatch()
	if stop := x.watchBase(); stop != nil {
		defer stop()
	}
	rw := &x.rw
	req := x.req
	req.TLS = x.tls
	rw.req = req
	var w http.ResponseWriter = rw
	if x.c == nil {
		w = h2Writer{rw}
	}
	defer func() {
		if v := recover(); v != nil {
			if rw.hijacked && v == http.ErrAbortHandler {
				// The connection is the handler's now: as net/http, leave it be.
				return
			}
			if v == http.ErrAbortHandler {
				rw.abort()
				return
			}
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			rw.panicked(fmt.Sprintf("%v\n%s", v, buf))
			return
		}
		rw.finish()
	}()
	x.h.ServeHTTP(w, req)
}

// loopExchange is an exchange that names its event loop: *server.Ctx, and the
// server's HTTP/2 streams.
type loopExchange interface{ Loop() *engine.Loop }

// exchange is one request's link between its loop and its handler goroutine: the
// pipe's input half carries the request body, its output half the response. The
// goroutine calls only ex.Post (and, on HTTP/1, reads the detached c.Request());
// every other use of ex is on the loop. req is set before the body is first asked
// for, the other fields before the handler starts.
type exchange struct {
	ex   server.Exchange // the request: c on HTTP/1, a server.StreamExchange on HTTP/2
	c    *server.Ctx     // the HTTP/1 request, or nil on HTTP/2
	pipe pipe
	rw   responseWriter // the handler's ResponseWriter, allocated with the exchange
	url  url.URL        // the request's URL when parseTarget's fast path built it
	req  *http.Request  // the handler's request
	// trailers are the request's trailer fields: written by the loop before the
	// body's end is published, then the handler goroutine's (mergeTrailers).
	trailers http.Header
	remote   string
	hasBody  bool
	started  bool                 // the body was asked for; owned by the handler goroutine
	tls      *tls.ConnectionState // the connection's TLS state (over TLS, either protocol), else nil
	h        http.Handler         // the handler Run serves the request with
	ctx      reqContext           // req's context; Run cancels it when the handler returns
	watch    watch                // the bound on the handler's silence (Options.ResponseTimeout)
	srv      *http.Server         // the adapter's stand-in for http.ServerContextKey
	// localOnce and local hold the connection's local address once asked for
	// (http.LocalAddrContextKey).
	localOnce sync.Once
	local     *net.TCPAddr
}

var _ loopSide = (*exchange)(nil)

// writer prepares the exchange's ResponseWriter.
func (x *exchange) writer(isHead bool) *responseWriter {
	x.rw = responseWriter{x: x, header: make(http.Header, 4), status: 200, contentLength: -1, isHead: isHead}
	return &x.rw
}

func (x *exchange) post(f func()) { x.ex.Post(f) }

// postRaw runs f on the loop even if the connection has gone; f checks gone. On
// HTTP/1 this saves the closure that Ctx.Post wraps around f.
func (x *exchange) postRaw(f func()) {
	if x.c != nil {
		x.c.Loop().Post(f)
		return
	}
	x.ex.Post(f)
}

// gone reports, on the loop, whether the HTTP/1 connection has closed (a stream's
// Post drops work for a gone stream itself).
func (x *exchange) gone() bool { return x.c != nil && x.c.Closed() }

// finished fails the output half once the server has ended the response on its own
// (the response timeout answered 504, say), so that the handler's next writes
// return an error instead of going to a finished request.
func (x *exchange) finished() error {
	if x.ex.Ended() {
		return errResponseEnded
	}
	return nil
}
func (x *exchange) pauseInput()   { x.ex.PauseBody() }
func (x *exchange) resumeInput()  { x.ex.ResumeBody() }
func (x *exchange) buffered() int { return x.ex.Buffered() }
func (x *exchange) wantDrain()    { x.ex.OnDrain(x.pipe.drained) }

// deliver runs on the loop for every body piece.
func (x *exchange) deliver(b []byte, end bool) {
	x.pipe.put(b)
	if !end {
		return
	}
	// Kept aside before end publishes them; the Read that returns EOF moves them
	// into the request, on the handler's goroutine, as net/http's body does.
	if x.c == nil {
		x.stream().EachReqTrailer(x.addTrailer)
	} else {
		for _, t := range x.c.RequestTrailers() {
			x.addTrailer(t.Name, t.Value)
		}
	}
	x.pipe.end()
}

// addTrailer keeps one request trailer field for the handler; on the loop.
func (x *exchange) addTrailer(name, value []byte) {
	if x.trailers == nil {
		x.trailers = http.Header{}
	}
	k := http.CanonicalHeaderKey(string(name))
	x.trailers[k] = append(x.trailers[k], string(value))
}

// mergeTrailers puts the trailers that came with the body into the request's
// Trailer, declared or not (net/http merges every field of a chunked body's
// trailer); on the handler's goroutine, once the body has ended.
func (x *exchange) mergeTrailers() {
	if x.trailers == nil {
		return
	}
	if x.req.Trailer == nil {
		x.req.Trailer = x.trailers
	} else {
		for k, vs := range x.trailers {
			x.req.Trailer[k] = vs
		}
	}
	x.trailers = nil
}

// body is the http.Request.Body of a request that has one.
type body struct{ x *exchange }

func (b body) Read(p []byte) (int, error) {
	if x := b.x; !x.started {
		// The first Read asks the loop for the body (and sends 100 Continue if the
		// client waits for it), as net/http does.
		x.started = true
		x.ex.Post(func() { x.ex.OnBody(x.deliver) })
	}
	n, err := b.x.pipe.Read(p)
	b.x.progress()
	if err == io.EOF {
		b.x.mergeTrailers()
	}
	return n, err
}

func (b body) Close() error {
	b.x.pipe.closeRead()
	return nil
}

// protoString is the Proto of an HTTP/1.0 and an HTTP/1.1 request, by minor version.
var protoString = [2]string{"HTTP/1.0", "HTTP/1.1"}

// request builds the net/http view of the HTTP/1 request, with context x.ctx,
// into x.req. It runs on the loop during ServeGale, while the request's byte slices are
// valid.
func (x *exchange) request() error {
	r := x.c.Request()
	// The target and every field value share one string: one allocation, not one
	// per field (the names come from commonName's table when they are common).
	size := len(r.Target)
	for _, f := range r.Headers {
		size += len(f.Value)
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.Write(r.Target)
	for _, f := range r.Headers {
		sb.Write(f.Value)
	}
	all := sb.String()
	target := all[:len(r.Target)]
	var u *url.URL
	if r.Form == http1.FormAuthority {
		u = connectURL(target)
	} else {
		u = x.parseTarget(target)
	}
	if u == nil {
		return errBadTarget
	}
	// As in net/http's server, a target with an authority gives the request its
	// Host, decoded as the URL's is; otherwise the Host field does.
	host := u.Host
	if host == "" {
		host = string(r.Host)
	}
	req := &http.Request{
		Method:     string(r.Method),
		URL:        u,
		Proto:      protoString[r.Minor&1],
		ProtoMajor: 1,
		ProtoMinor: r.Minor,
		Header:     make(http.Header, len(r.Headers)),
		Host:       host,
		RequestURI: target,
		RemoteAddr: x.remote,
		Close:      !r.KeepAlive,
		Body:       http.NoBody,
	}
	off := len(target)
	var vals []string // backing of the one-value slices, made at the first field kept
	for i, f := range r.Headers {
		v := all[off : off+len(f.Value)]
		off += len(f.Value)
		k := commonName(f.Name)
		if k == "Host" {
			continue
		}
		if old, ok := req.Header[k]; ok {
			req.Header[k] = append(old, v)
			continue
		}
		if vals == nil {
			vals = make([]string, len(r.Headers)-i)
		}
		vals[0] = v
		req.Header[k], vals = vals[:1:1], vals[1:]
	}
	switch {
	case r.Chunked:
		// As net/http: the coding and the trailer names move out of the header,
		// into TransferEncoding and Trailer; a framing field announced as a
		// trailer is refused, as net/http's server refuses it ("bad trailer key").
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
		var bad bool
		if req.Trailer, bad = declaredTrailers(req.Header); bad {
			return errBadTrailerKey
		}
		delete(req.Header, "Transfer-Encoding")
		delete(req.Header, "Trailer")
	case r.ContentLength > 0:
		req.ContentLength = r.ContentLength
	}
	if cl := req.Header["Content-Length"]; len(cl) > 1 {
		// Repeated equal lengths (the parser refuses different ones) are one field
		// to the handler, as net/http's server leaves them.
		req.Header["Content-Length"] = cl[:1:1]
	}
	if x.hasBody {
		req.Body = body{x}
	}
	x.req = req.WithContext(&x.ctx)
	return nil
}

// errBadTrailerKey is the 400 reason of an HTTP/1 request whose Trailer field
// announces a framing field, as net/http's server words it.
var errBadTrailerKey = errors.New("bad trailer key")

// declaredTrailers returns the trailer names the request's Trailer field
// announces, as keys without values, or nil. Transfer-Encoding, Trailer and
// Content-Length cannot be trailers: they are left out, and bad reports that one
// was announced (net/http's HTTP/1 server refuses the request then, its HTTP/2
// server ignores the name).
func declaredTrailers(h http.Header) (out http.Header, bad bool) {
	for _, v := range h.Values("Trailer") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			switch k := http.CanonicalHeaderKey(name); k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				bad = true
			default:
				if out == nil {
					out = http.Header{}
				}
				out[k] = nil
			}
		}
	}
	return out, bad
}

// parseTarget returns the URL of an origin-form or absolute-form request target,
// as url.ParseRequestURI does, or nil if the target does not parse. A path made only
// of characters that url.URL.EscapedPath leaves alone, with an optional query, is
// split into x.url without parsing or allocating; anything else goes to
// url.ParseRequestURI.
func (x *exchange) parseTarget(target string) *url.URL {
	if path, query, ok := plainTarget(target); ok {
		x.url = url.URL{Path: path, RawQuery: query, ForceQuery: len(path) == len(target)-1}
		return &x.url
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil
	}
	return u
}

// connectURL returns the URL of a CONNECT request's authority-form target as
// net/http's server builds it, by parsing "http://" and the target and then
// dropping the scheme (so the host is checked and decoded), or nil if that does
// not parse.
func connectURL(target string) *url.URL {
	u, err := url.ParseRequestURI("http://" + target)
	if err != nil {
		return nil
	}
	u.Scheme = ""
	return u
}

// plainTarget splits target into path and query when the path begins with "/" and
// holds only unreserved characters and the sub-delimiters that paths keep
// unescaped, and the query holds no control character, space, "#" or a second
// "?": then url.ParseRequestURI would return exactly that Path and RawQuery, no
// RawPath, and ForceQuery for a lone trailing "?".
func plainTarget(target string) (path, query string, ok bool) {
	if len(target) == 0 || target[0] != '/' {
		return "", "", false
	}
	i := 0
	for ; i < len(target) && target[i] != '?'; i++ {
		if !plainPath[target[i]] {
			return "", "", false
		}
	}
	if i == len(target) {
		return target, "", true
	}
	query = target[i+1:]
	for j := 0; j < len(query); j++ {
		if c := query[j]; c <= ' ' || c >= 0x7f || c == '#' || c == '?' {
			return "", "", false
		}
	}
	return target[:i], query, true
}

// plainPath marks the bytes a path keeps as they are through unescaping and
// re-escaping: letters, digits, "-._~" and "$&+,/:;=@".
var plainPath = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()
