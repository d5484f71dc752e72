package websocket

import (
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/gale-server/gale/http1"
)

// acceptGUID is the fixed string RFC 6455 §1.3 appends to the client's key.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns Sec-WebSocket-Accept for a Sec-WebSocket-Key value: the base64 of
// the SHA-1 of the key followed by the RFC 6455 GUID. key is used as sent (already
// trimmed of surrounding whitespace).
func AcceptKey(key []byte) string {
	var b [28]byte
	appendAccept(b[:0], key)
	return string(b[:])
}

// appendAccept appends the 28-byte accept value for key to dst.
func appendAccept(dst, key []byte) []byte {
	h := sha1.New()
	h.Write(key)
	h.Write([]byte(acceptGUID))
	var sum [sha1.Size]byte
	return base64.StdEncoding.AppendEncode(dst, h.Sum(sum[:0]))
}

// Header gives the handshake read access to the request's header fields.
type Header interface {
	// Field returns the value of the i-th field line (counting from 0) whose name equals
	// name without regard to ASCII case, with surrounding whitespace removed, and whether
	// there is one.
	Field(name string, i int) ([]byte, bool)
}

// Request is the part of an HTTP/1.1 request the opening handshake looks at.
type Request struct {
	// Method is the request method, compared exactly ("GET").
	Method []byte
	// Host is the Host field value (or the authority of an absolute-form target).
	Host []byte
	// Header gives access to the other fields.
	Header Header
	// HTTP10 is set for an HTTP/1.0 request, which cannot be upgraded (RFC 6455 §4.1
	// requires HTTP/1.1 or later).
	HTTP10 bool
}

// Fields is a Header over a list of name/value pairs.
type Fields []Field

// Field is one header field line.
type Field struct{ Name, Value []byte }

// Field implements Header.
func (f Fields) Field(name string, i int) ([]byte, bool) {
	for j := range f {
		if foldEq(f[j].Name, name) {
			if i == 0 {
				return http1.TrimOWS(f[j].Value), true
			}
			i--
		}
	}
	return nil, false
}

// MapHeader is a Header over a net/http style map of canonical names to values.
type MapHeader map[string][]string

// Field implements Header. Names are looked up as given and, failing that, by a scan
// without regard to case.
func (m MapHeader) Field(name string, i int) ([]byte, bool) {
	vs, ok := m[name]
	if !ok {
		for k, v := range m {
			if foldEq([]byte(k), name) {
				vs = v
				break
			}
		}
	}
	if i < len(vs) {
		return http1.TrimOWS([]byte(vs[i])), true
	}
	return nil, false
}

// HTTP1Header is a Header over a request parsed by package http1; convert with
// (*HTTP1Header)(req). It does not allocate.
type HTTP1Header http1.Request

// Field implements Header.
func (h *HTTP1Header) Field(name string, i int) ([]byte, bool) {
	for j := range h.Headers {
		if foldEq(h.Headers[j].Name, name) {
			if i == 0 {
				return h.Headers[j].Value, true
			}
			i--
		}
	}
	return nil, false
}

// FromHTTP1 returns the handshake view of a request parsed by package http1. The view
// shares req's memory.
func FromHTTP1(req *http1.Request) Request {
	return Request{Method: req.Method, Host: req.Host, Header: (*HTTP1Header)(req), HTTP10: req.Minor == 0}
}

var (
	_ Header = Fields(nil)
	_ Header = MapHeader(nil)
	_ Header = (*HTTP1Header)(nil)
)

// HandshakeOptions is the server's policy for opening handshakes. The zero value accepts
// same-origin requests (or requests without Origin), selects no subprotocol and declines
// permessage-deflate.
type HandshakeOptions struct {
	// AllowedOrigins lists the Origin values accepted. An element is "*" (any origin,
	// "null" included), a full origin "scheme://host[:port]" (compared without case, a
	// default port (80 for http and ws, 443 for https and wss) may be left out on either
	// side), or a bare host "host[:port]" (any scheme). When empty, only an Origin whose
	// host and port match the Host field is accepted. Requests without Origin (non-browser
	// clients) are always accepted: Origin protects browsers' users from cross-site
	// WebSocket hijacking, and only browsers are bound to send it.
	AllowedOrigins []string
	// Subprotocols lists the subprotocols the server speaks, most preferred first. The
	// first one the client also offers is selected; none selected is not an error.
	Subprotocols []string
	// Deflate enables permessage-deflate when non-nil.
	Deflate *DeflateOptions
}

// Accepted is a successful opening handshake.
type Accepted struct {
	// Subprotocol is the selected subprotocol, empty for none.
	Subprotocol string
	// Compression reports whether permessage-deflate was negotiated; Deflate then holds
	// its parameters.
	Compression bool
	Deflate     DeflateParams
	accept      [28]byte
}

// AcceptValue returns the Sec-WebSocket-Accept value.
func (a *Accepted) AcceptValue() string { return string(a.accept[:]) }

// AppendHeaders appends the header lines of the 101 response (each ending in CRLF, without
// the status line or the final empty line): Upgrade, Connection, Sec-WebSocket-Accept and,
// when negotiated, Sec-WebSocket-Protocol and Sec-WebSocket-Extensions.
func (a *Accepted) AppendHeaders(dst []byte) []byte {
	dst = append(dst, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = append(dst, a.accept[:]...)
	dst = append(dst, "\r\n"...)
	if a.Subprotocol != "" {
		dst = append(dst, "Sec-WebSocket-Protocol: "...)
		dst = append(dst, a.Subprotocol...)
		dst = append(dst, "\r\n"...)
	}
	if a.Compression {
		dst = append(dst, "Sec-WebSocket-Extensions: "...)
		dst = a.Deflate.AppendExtension(dst)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// Headers returns the same header fields as AppendHeaders as name/value pairs, for
// adapters that set them on a response object.
func (a *Accepted) Headers() [][2]string {
	h := [][2]string{{"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"Sec-WebSocket-Accept", a.AcceptValue()}}
	if a.Subprotocol != "" {
		h = append(h, [2]string{"Sec-WebSocket-Protocol", a.Subprotocol})
	}
	if a.Compression {
		h = append(h, [2]string{"Sec-WebSocket-Extensions", string(a.Deflate.AppendExtension(nil))})
	}
	return h
}

// AppendResponse appends the whole 101 Switching Protocols response head.
func (a *Accepted) AppendResponse(dst []byte) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\n"...)
	return append(a.AppendHeaders(dst), "\r\n"...)
}

// HandshakeError is a refused opening handshake: the caller answers with Status, the
// Header fields and Reason as a text body, and does not switch protocols. It is a
// request-level error; the connection may stay open for further HTTP requests.
type HandshakeError struct {
	// Status is 400 (bad request), 403 (origin refused), 405 (not GET) or 426 (version).
	Status int
	// Reason is a short English description.
	Reason string
	// Header holds fields the response must carry: Allow for 405, Sec-WebSocket-Version
	// for 426.
	Header [][2]string
}

func (e *HandshakeError) Error() string {
	return "websocket: handshake refused: " + e.Reason + " (" + strconv.Itoa(e.Status) + ")"
}

// AppendResponse appends a complete HTTP/1.1 response for the refusal: status line, the
// Header fields, Content-Type, Content-Length and Reason as the body.
func (e *HandshakeError) AppendResponse(dst []byte) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(e.Status)...)
	dst = append(dst, "\r\n"...)
	for _, h := range e.Header {
		dst = append(append(append(append(dst, h[0]...), ": "...), h[1]...), "\r\n"...)
	}
	dst = append(dst, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(e.Reason)+1), 10)
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, e.Reason...)
	return append(dst, '\n')
}

func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 405:
		return "Method Not Allowed"
	case 426:
		return "Upgrade Required"
	}
	return "Error"
}

// hasBody reports whether a request announces a body: a Transfer-Encoding field, or a
// Content-Length field whose value is not 0.
func hasBody(h Header) bool {
	if _, ok := h.Field("Transfer-Encoding", 0); ok {
		return true
	}
	for i := 0; ; i++ {
		v, ok := h.Field("Content-Length", i)
		if !ok {
			return false
		}
		if strings.TrimLeft(string(v), "0") != "" {
			return true
		}
	}
}

// The refusals Handshake returns.
var (
	errMethod    = &HandshakeError{Status: 405, Reason: "WebSocket handshake must use GET", Header: [][2]string{{"Allow", "GET"}}}
	errVersion   = &HandshakeError{Status: 426, Reason: "WebSocket version 13 required", Header: [][2]string{{"Sec-WebSocket-Version", "13"}}}
	errUpgrade   = &HandshakeError{Status: 400, Reason: "Upgrade must include websocket"}
	errConnToken = &HandshakeError{Status: 400, Reason: "Connection must include upgrade"}
	errKey       = &HandshakeError{Status: 400, Reason: "Sec-WebSocket-Key must be the base64 of 16 bytes"}
	errOrigin    = &HandshakeError{Status: 403, Reason: "Origin not allowed"}
	errHost      = &HandshakeError{Status: 400, Reason: "Host missing"}
	errHTTP10    = &HandshakeError{Status: 400, Reason: "WebSocket needs HTTP/1.1"}
	errBody      = &HandshakeError{Status: 400, Reason: "WebSocket handshake must not carry a body"}
)

// Handshake checks an opening handshake request (RFC 6455 §4.2.1) against opt and
// returns what to answer: an Accepted whose AppendResponse is the 101 response, or a
// *HandshakeError. Checks run in this order: method (405), HTTP/1.0 (400), Upgrade has the token
// websocket (400), Connection has the token upgrade (400), exactly one
// Sec-WebSocket-Version equal to 13 (426 with Sec-WebSocket-Version: 13), exactly one
// Sec-WebSocket-Key that is the base64 of 16 bytes (400), Host present (400), no body
// (400: a Transfer-Encoding field or a Content-Length other than 0; the bytes after the
// head would be both body and frames), Origin (403). Then the subprotocol is selected and permessage-deflate negotiated; neither can
// fail. Handshake does not keep r or its memory.
func Handshake(r Request, opt *HandshakeOptions) (Accepted, error) {
	var a Accepted
	if string(r.Method) != "GET" {
		return a, errMethod
	}
	if r.HTTP10 {
		return a, errHTTP10
	}
	if !hasToken(r.Header, "Upgrade", "websocket") {
		return a, errUpgrade
	}
	if !hasToken(r.Header, "Connection", "upgrade") {
		return a, errConnToken
	}
	if v, ok := single(r.Header, "Sec-WebSocket-Version"); !ok || string(v) != "13" {
		return a, errVersion
	}
	key, ok := single(r.Header, "Sec-WebSocket-Key")
	if !ok || !validKey(key) {
		return a, errKey
	}
	if len(r.Host) == 0 {
		return a, errHost
	}
	if hasBody(r.Header) {
		return a, errBody
	}
	if origin, ok := r.Header.Field("Origin", 0); ok && !originAllowed(origin, r.Host, opt.AllowedOrigins) {
		return a, errOrigin
	}
	appendAccept(a.accept[:0], key)
	a.Subprotocol = selectSubprotocol(r.Header, opt.Subprotocols)
	if opt.Deflate != nil {
		a.Deflate, a.Compression = negotiateDeflate(r.Header, opt.Deflate)
	}
	return a, nil
}

// hasToken reports whether any field named name lists token (ASCII case-insensitive).
func hasToken(h Header, name, token string) bool {
	for i := 0; ; i++ {
		v, ok := h.Field(name, i)
		if !ok {
			return false
		}
		if http1.ListHasToken(v, token) {
			return true
		}
	}
}

// single returns the value of the only field named name; two or more count as none.
func single(h Header, name string) ([]byte, bool) {
	v, ok := h.Field(name, 0)
	if !ok {
		return nil, false
	}
	if _, dup := h.Field(name, 1); dup {
		return nil, false
	}
	return v, true
}

// validKey reports whether key is the padded base64 of exactly 16 bytes (RFC 6455 §4.1).
func validKey(key []byte) bool {
	if len(key) != 24 || key[22] != '=' || key[23] != '=' {
		return false
	}
	var out [18]byte
	n, err := base64.StdEncoding.Decode(out[:], key)
	return err == nil && n == 16
}

// selectSubprotocol returns the first of the server's subprotocols that the client lists
// in any Sec-WebSocket-Protocol field, compared exactly.
func selectSubprotocol(h Header, server []string) string {
	for _, want := range server {
		for i := 0; ; i++ {
			v, ok := h.Field("Sec-WebSocket-Protocol", i)
			if !ok {
				break
			}
			for list := v; list != nil; {
				var item []byte
				item, list = nextItem(list, ',')
				if string(item) == want {
					return want
				}
			}
		}
	}
	return ""
}

// nextItem splits list at the first sep outside a quoted string and returns the first
// element with surrounding whitespace removed; rest is nil after the last element.
func nextItem(list []byte, sep byte) (item, rest []byte) {
	quoted := false
	for i := 0; i < len(list); i++ {
		switch c := list[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++
		case c == sep && !quoted:
			return http1.TrimOWS(list[:i]), list[i+1:]
		}
	}
	return http1.TrimOWS(list), nil
}

// foldEq reports whether b equals s without regard to ASCII case.
func foldEq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
