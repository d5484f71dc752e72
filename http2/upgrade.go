package http2

import (
	"encoding/base64"
	"errors"
	"strings"
)

// UpgradeRequest is the HTTP/1.1 request that asked to switch to HTTP/2 with
// "Upgrade: h2c" (RFC 7540 §3.2). After the 101 response it becomes stream 1,
// half-closed (remote): the request had no body, or the caller already received it.
type UpgradeRequest struct {
	// Method and Path are the request line's method and request-target.
	Method, Path string
	// Authority is the Host field value.
	Authority string
	// Header holds the request's other fields, names in lowercase, without the
	// connection-specific ones (Connection, Upgrade, HTTP2-Settings, Keep-Alive,
	// Proxy-Connection, Transfer-Encoding, Host) and without a "te" other than
	// "trailers"; UpgradeHeader says which to drop.
	Header []Field
}

// ErrBadUpgradeSettings is the error of DecodeUpgradeSettings for an HTTP2-Settings value
// that is not base64url or not a valid SETTINGS payload.
var ErrBadUpgradeSettings = errors.New("http2: invalid HTTP2-Settings header field")

// DecodeUpgradeSettings decodes the HTTP2-Settings header field of an upgrade request
// (RFC 7540 §3.2.1: the SETTINGS frame payload in base64url, trailing '=' omitted,
// though padded values are accepted too) and checks the parameters as a SETTINGS frame
// would be checked. It returns the payload to pass to Conn.Upgrade.
func DecodeUpgradeSettings(v string) ([]byte, error) {
	p, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil {
		return nil, ErrBadUpgradeSettings
	}
	f := Frame{Type: FrameSettings}
	if f.parseSettings(p) != nil {
		return nil, ErrBadUpgradeSettings
	}
	return p, nil
}

// UpgradeHeader reports whether a request field (name in lowercase) may be carried into
// the HTTP/2 request of an upgrade: false for the fields that concern the HTTP/1.1
// connection only and for Host, which becomes the authority.
func UpgradeHeader(name, value string) bool {
	switch name {
	case "connection", "upgrade", "http2-settings", "keep-alive", "proxy-connection", "transfer-encoding", "host":
		return false
	case "te":
		return value == "trailers"
	}
	return true
}

// Upgrade turns a new Conn into the server side of an h2c upgrade: settings (from
// DecodeUpgradeSettings) are applied as the client's first SETTINGS, acknowledged by the
// 101 response itself, and req becomes stream 1, delivered at once with
// Handler.OnRequest. It must be called right after NewConn, before the first Feed; the
// client still sends the connection preface and its own SETTINGS frame, which Feed
// expects as on any connection. The caller writes the 101 response before Out. DATA
// for stream 1 is held until the client preface arrives (WriteData takes nothing
// before; OnWritable follows it).
//
// It fails when the Conn is not new, and when req is not a valid request (no method, a
// path not starting with '/' or "*", an invalid field, a body): stream 1 is then
// answered as a malformed HTTP/2 request would be, with RST_STREAM PROTOCOL_ERROR (or
// 431 for a field section above MaxHeaderListSize, MaxHeaderBytes or
// MaxHeaderFields), and no stream is delivered.
func (c *Conn) Upgrade(settings []byte, req UpgradeRequest) (*Stream, error) {
	if c.maxClientID != 0 || c.prefaceDone || c.err != nil {
		return nil, errors.New("http2: Upgrade on a connection that already started")
	}
	f := Frame{Type: FrameSettings}
	if err := f.parseSettings(settings); err != nil {
		return nil, ErrBadUpgradeSettings
	}
	_, _ = c.applyPeerSettings(&f) // no stream yet: no window can overflow
	h := &c.hdrs
	h.reset(false)
	lim := c.cfg
	h.add(":method", req.Method, lim)
	h.add(":scheme", "http", lim)
	if req.Authority != "" {
		h.add(":authority", req.Authority, lim)
	}
	h.add(":path", req.Path, lim)
	for _, fl := range req.Header {
		h.add(fl.Name, fl.Value, lim)
	}
	h.finish()
	fields := h.fields
	h.fields = nil
	c.maxClientID = 1
	c.hdrEndStream = true
	switch {
	case h.tooLarge:
		_ = c.refuseTooLarge(1)
		return nil, errors.New("http2: upgrade request header section too large")
	case h.err == "" && h.contentLength > 0:
		h.fail("upgrade request with a body")
	}
	if h.err != "" {
		_ = c.resetStream(streamErr(1, ErrCodeProtocol, "malformed request: "+h.err))
		return nil, errors.New("http2: upgrade request malformed: " + h.err)
	}
	s := &Stream{
		ID: 1, Method: h.method, Scheme: h.scheme, Authority: h.authority, Path: h.path,
		Header: fields, ContentLength: h.contentLength, Priority: h.priority,
		sendWindow: c.peerInitialWindow, recvWindow: c.recvInitialWindow(),
		state: stateHalfClosedRemote,
	}
	c.streams = map[uint32]*Stream{1: s}
	// Stream 1's DATA waits for the client preface: the client reads the 101 and
	// what follows it in one buffer before it switches to HTTP/2, and curl (7.88)
	// fails the upgrade when more than 32 KiB follow the 101 in that read, which a
	// response that fills the 64 KiB initial window would. The head and SETTINGS
	// still go at once; the body costs one round trip.
	c.holdData = true
	if c.ctr != nil {
		c.ctr.StreamsOpened.Add(1)
	}
	c.h.OnRequest(s)
	return s, nil
}
