package nethttp

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gale-server/gale/server"
	"golang.org/x/net/http/httpguts"
)

// ServeExchange serves an HTTP/2 stream (any server.StreamExchange) with the
// net/http handler: the request has Proto "HTTP/2.0", its body and the response
// stream with the stream's flow control as backpressure, Flush sends DATA at once,
// trailers travel in trailing HEADERS, and the request context is cancelled when
// the client resets the stream or the connection goes. The ResponseWriter is not
// an http.Hijacker, as with net/http's own HTTP/2 server. An exchange that is not
// an HTTP/2 stream (a plain *server.Ctx) is served by ServeGale.
func (a *adapter) ServeExchange(ex server.Exchange) {
	if c, ok := ex.(*server.Ctx); ok {
		a.ServeGale(c)
		return
	}
	sx, ok := ex.(server.StreamExchange)
	if !ok {
		ex.Error(505, "the net/http adapter serves HTTP/1.1 and HTTP/2 streams only")
		return
	}
	ex.Detach()
	x := &exchange{ex: sx, remote: remoteString(sx.RemoteAddr()), hasBody: sx.BodyExpected()}
	x.pipe.init(x, http.ErrBodyReadAfterClose)
	req, err := x.streamRequest()
	if err != nil {
		sx.Error(400, err.Error())
		return
	}
	x.req = req.WithContext(&x.ctx)
	x.writer(sx.IsHead())
	sx.OnClose(func(err error) {
		x.ctx.cancel()
		x.pipe.fail(err, errConnGone)
	})
	x.tls = tlsState(sx)
	a.run(x)
}

// errBadTarget is the 400 reason of a :path (or CONNECT :authority) that is not a
// request-target net/http can parse.
var errBadTarget = errors.New("invalid request target")

// streamRequest builds the net/http view of an HTTP/2 stream's request, on the
// loop (the stream's fields are read there).
func (x *exchange) streamRequest() (*http.Request, error) {
	sx := x.stream()
	method := string(sx.Method())
	target := string(sx.Target())
	host := string(sx.Host())
	var u *url.URL
	if method == http.MethodConnect && target == "" {
		u, target = &url.URL{Host: host}, host
	} else {
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return nil, errBadTarget
		}
	}
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     http.Header{},
		Host:       host,
		RequestURI: target,
		RemoteAddr: x.remote,
		Body:       http.NoBody,
	}
	sx.EachReqHeader(func(name, value []byte) {
		k := commonName(name)
		if k != "Host" {
			req.Header[k] = append(req.Header[k], string(value))
		}
	})
	// Like net/http's HTTP/2 server: the length is known when declared, or zero when
	// the HEADERS ended the stream; otherwise it is unknown (-1).
	switch cl := sx.ContentLength(); {
	case cl >= 0:
		req.ContentLength = cl
		req.Header.Set("Content-Length", strconv.FormatInt(cl, 10))
	case x.hasBody:
		req.ContentLength = -1
	}
	if x.hasBody {
		req.Trailer, _ = declaredTrailers(req.Header)
		req.Body = body{x}
	}
	delete(req.Header, "Trailer") // in req.Trailer, as net/http's HTTP/2 server has it
	if httpguts.HeaderValuesContainsToken(req.Header["Expect"], "100-continue") {
		// As net/http's HTTP/2 server: the expectation is the server's to meet (the
		// first body Read sends the 100), not a field for the handler to forward.
		delete(req.Header, "Expect")
	}
	return req, nil
}

// stream returns the HTTP/2 stream of an exchange whose c is nil.
func (x *exchange) stream() server.StreamExchange { return x.ex.(server.StreamExchange) }

// h2Writer is the http.ResponseWriter of an HTTP/2 stream: the HTTP/1 writer
// without Hijack (HTTP/2 has no connection to hand over).
type h2Writer struct{ w *responseWriter }

var (
	_ http.ResponseWriter = h2Writer{}
	_ http.Flusher        = h2Writer{}
)

func (h h2Writer) Header() http.Header         { return h.w.Header() }
func (h h2Writer) Write(p []byte) (int, error) { return h.w.Write(p) }
func (h h2Writer) WriteHeader(code int)        { h.w.WriteHeader(code) }

// Flush sends the head and the buffered body as DATA at once.
func (h h2Writer) Flush() { h.w.Flush() }

// ReadFrom sends a file's bytes as the HTTP/1 writer does (responseWriter.ReadFrom).
func (h h2Writer) ReadFrom(src io.Reader) (int64, error) { return h.w.ReadFrom(src) }
