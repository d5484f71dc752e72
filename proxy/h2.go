package proxy

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/server"
)

// clientSide is the client side of a proxied exchange: a *server.Ctx (HTTP/1.1) or an
// HTTP/2 stream (server.StreamExchange). Both answer on the loop that owns the
// upstream connections the exchange uses.
type clientSide interface {
	server.Exchange
	OnPeerEOF(f func())
	Loop() *engine.Loop
	SetUpstream(addr netip.AddrPort, d time.Duration)
	TLSVersion() uint16
	ClientCert() *server.ClientCert
}

// h2client is what an HTTP/2 stream offers the proxy.
type h2client interface {
	clientSide
	server.StreamExchange
}

var (
	_ clientSide             = (*server.Ctx)(nil)
	_ server.ExchangeHandler = (*Handler)(nil)
)

// ServeExchange forwards a request of any protocol. HTTP/2 streams go to the same
// HTTP/1.1 upstream pools as HTTP/1.1 requests: the stream's request is rewritten as
// an HTTP/1.1 request head (h2Request), its body streams upstream with chunked framing
// when it has no content-length, and the response streams back as DATA frames with the
// stream's flow control as backpressure (Buffered/OnDrain, as on HTTP/1.1).
func (h *Handler) ServeExchange(x server.Exchange) {
	if c, ok := x.(*server.Ctx); ok {
		h.ServeGale(c)
		return
	}
	c, ok := x.(h2client)
	if !ok {
		x.Error(505, "proxy: this protocol cannot be proxied")
		return
	}
	h.serve(c, nil, h2Request(c))
}

// h2Request builds the HTTP/1.1 view of an HTTP/2 stream's request: method, target
// (":path"), path, normalized path, query and host (":authority") as the stream has
// them, the regular fields (lowercase names; HTTP/2 has no connection-specific ones),
// and framing from the stream: content-length when declared, chunked when a body of
// unknown length may follow, none when HEADERS ended the stream (Content-Length: 0
// for a POST, PUT or PATCH), and Expect100 for "expect: 100-continue". The slices point into
// the stream's own copy of the request, valid for the exchange.
func h2Request(c h2client) *http1.Request {
	req := &http1.Request{
		Method: c.Method(), Target: c.Target(), Path: c.Path(), NormPath: c.NormPath(), Query: c.Query(),
		Host: c.Host(), Form: http1.FormOrigin, Minor: 1, KeepAlive: true, ContentLength: -1,
	}
	if bytes.Equal(req.Target, []byte("*")) {
		req.Form = http1.FormAsterisk
	}
	c.EachReqHeader(func(name, value []byte) {
		req.Headers = append(req.Headers, http1.Header{Name: name, Value: value})
		// As http1 parses it: the exchange waits for the origin's 100 before it asks
		// the stream for the body, which then sends the client its 100.
		if http1.EqualFold(name, "expect") && http1.EqualFold(value, "100-continue") {
			req.Expect100 = true
		}
	})
	switch cl := c.ContentLength(); {
	case cl >= 0:
		req.ContentLength = cl
	case c.BodyExpected():
		req.Chunked = true
	case anticipatesBody(req.Method):
		// No body where the method anticipates one: Content-Length: 0, as a user
		// agent sends it (RFC 9110 §8.6). Other methods, a GET, send no framing
		// field, as an HTTP/1.1 client's request would go.
		req.ContentLength = 0
	}
	return req
}

// anticipatesBody reports the methods whose requests usually carry content.
func anticipatesBody(m []byte) bool {
	switch string(m) {
	case "POST", "PUT", "PATCH":
		return true
	}
	return false
}

// requestTrailers returns the client's request trailers, sent after a chunked body.
func (x *exchange) requestTrailers() []http1.Header {
	if x.hc != nil {
		return x.hc.RequestTrailers()
	}
	var tr []http1.Header
	if s, ok := x.c.(server.StreamExchange); ok {
		s.EachReqTrailer(func(name, value []byte) {
			tr = append(tr, http1.Header{Name: name, Value: value})
		})
	}
	return tr
}

// cut ends a client response that cannot be completed (the upstream failed after the
// head went out): an HTTP/1.1 connection closes after what was sent, so the client sees
// a truncated response (short of its Content-Length or last chunk; one without framing
// is reset); an HTTP/2 stream is reset (INTERNAL_ERROR), never completed.
func (x *exchange) cut() {
	if x.hc != nil {
		if x.hc.CloseDelimited() {
			// Without framing the close would read as the body's end (an HTTP/1.0
			// client given a chunked or close-delimited body cut by the origin): a
			// reset tells the client the response is incomplete, once what is
			// queued for it has gone (at the low-water mark, or at once).
			ec := x.hc.Conn()
			if ec.Buffered() == 0 {
				ec.Abort(errCut)
			} else {
				x.hc.OnDrain(func() { ec.Abort(errCut) })
			}
			return
		}
		x.hc.Conn().CloseAfterFlush(false)
		return
	}
	if s, ok := x.c.(server.StreamExchange); ok {
		s.Reset()
	}
}
