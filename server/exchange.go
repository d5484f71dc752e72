package server

import (
	"net/netip"
	"time"
)

// RequestView is the protocol-neutral view of one request: what a handler may read
// whether the request came as an HTTP/1.1 message or (later) an HTTP/2 stream. Byte
// slices are views that stay valid while the request is being served inline, or until
// the response ends once the exchange was detached. Every method runs on the
// exchange's loop.
type RequestView interface {
	// Method returns the method token, case preserved.
	Method() []byte
	// Target returns the request-target as sent (":path" in HTTP/2).
	Target() []byte
	// Path returns the target's path, still percent-encoded, without the query.
	Path() []byte
	// NormPath returns the path in the normal form of http1.NormalizePath (decoded,
	// dot segments and repeated slashes removed): the path routing matched and the one
	// features act on. It is nil when the protocol did not normalize the request; a
	// feature then normalizes Path itself with the same function.
	NormPath() []byte
	// Query returns what follows '?' in the target (without it), or nil.
	Query() []byte
	// Host returns the authority (Host field or ":authority"), nil when absent.
	Host() []byte
	// ReqHeader returns the first value of the request field name (compared
	// case-insensitively) and whether it is present.
	ReqHeader(name string) ([]byte, bool)
	// EachReqHeader calls f for every request field in order, duplicates included.
	EachReqHeader(f func(name, value []byte))
	// Proto returns the protocol version, "HTTP/1.1", "HTTP/1.0" or "HTTP/2.0".
	Proto() string
	// RemoteAddr returns the client's address.
	RemoteAddr() netip.AddrPort
	// IsHead reports a HEAD request; body writes are then discarded by the server.
	IsHead() bool
	// Now returns the loop's cached clock.
	Now() time.Time
	// OnBody streams the request body to f: f(p, false) per piece (p valid only
	// during the call), then f(nil, true).
	OnBody(f func(p []byte, end bool))
	// ReadBody collects the whole body (bounded by the body limit) and calls f.
	ReadBody(f func(body []byte))
	// PauseBody stops body delivery until ResumeBody.
	PauseBody()
	// ResumeBody restarts body delivery.
	ResumeBody()
}

// Response is the protocol-neutral way to answer a request. The protocol adds the
// framing (Content-Length or chunks in HTTP/1.1, DATA frames in HTTP/2), Date,
// Server and connection management. Every method runs on the exchange's loop, inside
// the handler or later from a closure run with Post.
type Response interface {
	// Header returns the response fields, to fill before WriteHeader.
	Header() *Header
	// Trailer returns the trailer fields, sent after the body where the protocol can.
	Trailer() *Header
	// SetStatus sets the status used when the head is written implicitly.
	SetStatus(status int)
	// SetContentLength declares the body length (-1: unknown).
	SetContentLength(n int64)
	// WriteInformational sends a 1xx response (103 Early Hints) before the final one.
	WriteInformational(status int, h *Header)
	// WriteHeader sends the status and fields; later calls do nothing.
	WriteHeader(status int)
	// Write sends body bytes (copied), writing the head first if needed.
	Write(p []byte) (int, error)
	// SendFile sends n bytes of file fd from off as body bytes; release (may be nil)
	// runs once when the bytes were sent or the exchange was abandoned. The protocol
	// decides how (sendfile(2) on a plain socket, reads in chunks under TLS).
	SendFile(fd int, off, n int64, release func())
	// End completes the response.
	End()
	// Respond writes a complete response with a known length and ends it.
	Respond(status int, contentType string, body []byte)
	// Error writes a small text/plain error response and ends it.
	Error(status int, msg string)
	// OnDrain runs f once when queued output has fallen to the low-water mark.
	OnDrain(f func())
	// Buffered reports the output queued for the client, in bytes.
	Buffered() int
	// HeadSent reports whether the head has been written.
	HeadSent() bool
	// Ended reports whether the response is complete.
	Ended() bool
	// Closed reports whether the client has gone (the connection or the stream).
	Closed() bool
	// OnClose runs f if the client goes before the response ends.
	OnClose(f func(err error))
	// Detach lets the handler return and finish the response later (with Post).
	Detach()
	// Post runs f on the exchange's loop unless the client has gone by then; safe
	// from any goroutine.
	Post(f func())
}

// Exchange is one request and its response: what a protocol-neutral handler sees.
// *Ctx is the HTTP/1.1 implementation; an HTTP/2 stream will be another.
type Exchange interface {
	RequestView
	Response
}

// ExchangeHandler serves a request through the protocol-neutral Exchange. Features
// that do not need HTTP/1.1 specifics (static, respond) implement it beside Handler,
// so one value serves every protocol.
type ExchangeHandler interface {
	ServeExchange(x Exchange)
}

var _ Exchange = (*Ctx)(nil)

// Method returns the request method.
func (c *Ctx) Method() []byte { return c.req.Method }

// NormPath returns the normalized request path (http1.Request.NormPath).
func (c *Ctx) NormPath() []byte { return c.req.NormPath }

// Target returns the request-target as sent.
func (c *Ctx) Target() []byte { return c.req.Target }

// Path returns the target's path without the query, still percent-encoded.
func (c *Ctx) Path() []byte { return c.req.Path }

// Query returns the raw query without '?', or nil.
func (c *Ctx) Query() []byte { return c.req.Query }

// Host returns the request's authority, nil when absent.
func (c *Ctx) Host() []byte { return c.req.Host }

// ReqHeader returns the first value of the request field name.
func (c *Ctx) ReqHeader(name string) ([]byte, bool) { return c.req.Header(name) }

// EachReqHeader calls f for every request field in order.
func (c *Ctx) EachReqHeader(f func(name, value []byte)) {
	for _, h := range c.req.Headers {
		f(h.Name, h.Value)
	}
}

// Proto returns "HTTP/1.1" or "HTTP/1.0".
func (c *Ctx) Proto() string {
	if c.req.Minor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// Raw returns the pre-rendered "Name: value\r\n" lines added with AppendRaw, for a
// protocol that sends fields in its own encoding (HTTP/2 splits them again).
func (h *Header) Raw() []byte { return h.raw }
