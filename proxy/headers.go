package proxy

import (
	"bytes"
	"net/netip"

	"github.com/gale-server/gale/http1"
)

// hopByHopNames are the fields that concern one connection only (RFC 9110 §7.6.1)
// and are never forwarded, in lower case; fields starting with "proxy-" are too.
// Trailer is not one of them (RFC 9110 §6.6.2; RFC 2616's list named "Trailers",
// meaning TE's token): it announces trailers the proxy forwards, and goes with them.
var hopByHopNames = [...]string{
	"connection", "keep-alive", "te", "transfer-encoding", "upgrade", "http2-settings",
}

// hopByHop reports whether the field name is hop-by-hop: a standard one, a Proxy-*
// field, or one that a Connection field names. conns is what connectionFields
// returned for the message: nil when it has no Connection field, so the common case
// scans the fields once per message, not once per field.
func hopByHop(name []byte, conns []http1.Header) bool {
	for _, n := range hopByHopNames {
		if http1.EqualFold(name, n) {
			return true
		}
	}
	if len(name) >= 6 && http1.EqualFold(name[:6], "proxy-") {
		return true
	}
	for i := range conns {
		if http1.EqualFold(conns[i].Name, "connection") && http1.ListHasToken(conns[i].Value, string(name)) {
			return true
		}
	}
	return false
}

// connectionFields returns fields if one of them is a Connection field, else nil
// (the argument hopByHop takes).
func connectionFields(fields []http1.Header) []http1.Header {
	for i := range fields {
		if http1.EqualFold(fields[i].Name, "connection") {
			return fields
		}
	}
	return nil
}

// reframed are request fields the proxy writes itself from what gale parsed.
var reframed = [...]string{
	"host", "content-length", "expect", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
	"x-real-ip",
}

// buildHead appends the upstream request head for x's request to server srv:
// the request line (the original target, or the rewritten normalized path), Host,
// the client's end-to-end fields (without names that hold an underscore unless the
// route keeps them), the forwarding fields, set_headers, and framing
// re-derived from the parsed request (never a Content-Length beside chunked, never
// an obs-folded line, which the parser refuses).
func (h *Handler) buildHead(dst []byte, x *exchange, srv int) []byte {
	req := x.req
	dst = append(dst, req.Method...)
	dst = append(dst, ' ')
	dst = h.appendTarget(dst, req)
	dst = append(dst, " HTTP/1.1\r\n"...)
	switch {
	case h.setOwn&ownHost != 0:
		dst = http1.AppendHeader(dst, "Host", h.setHost)
	case h.r.PreserveHost && len(req.Host) > 0:
		dst = http1.AppendHeaderBytes(dst, hostName, req.Host)
	default:
		dst = http1.AppendHeader(dst, "Host", x.ls.u.hosts[srv])
	}
	peer := x.c.RemoteAddr().Addr().Unmap()
	trusted := h.trusted(peer)
	conns := connectionFields(req.Headers)
fields:
	for _, f := range req.Headers {
		if hopByHop(f.Name, conns) || (!h.r.UnderscoresInHeaders && bytes.IndexByte(f.Name, '_') >= 0) {
			continue
		}
		for _, n := range reframed {
			if http1.EqualFold(f.Name, n) {
				continue fields
			}
		}
		for _, n := range h.setNames {
			if http1.EqualFold(f.Name, n) {
				continue fields
			}
		}
		dst = http1.AppendHeaderBytes(dst, f.Name, f.Value)
	}
	dst = h.appendForwarding(dst, req, peer, trusted, x.c.TLSVersion() != 0)
	if h.r.Via != "" && h.setOwn&ownVia == 0 {
		major := 1
		if x.hc == nil {
			major = 2 // the request came on an HTTP/2 stream
		}
		dst = appendVia(dst, major, req.Minor, h.r.Via)
	}
	for _, kv := range h.r.SetHeaders {
		switch {
		case http1.EqualFold(kv[0], "host"):
		case IsClientCertVar(kv[1]):
			if v := clientCertValue(kv[1], x.c); v != "" {
				dst = http1.AppendHeader(dst, kv[0], v)
			}
		default:
			dst = http1.AppendHeader(dst, kv[0], kv[1])
		}
	}
	switch {
	case x.tunnel:
		dst = append(dst, "Connection: Upgrade\r\nUpgrade: websocket\r\n"...)
	case x.up != nil && x.up.lastRequest():
		// The connection will not be pooled after this request: the origin is
		// told, and closes first, so that its side, not the proxy's, keeps the
		// TIME_WAIT (as nginx's Connection: close without keepalive).
		dst = append(dst, "Connection: close\r\n"...)
	}
	if x.expect {
		dst = append(dst, "Expect: 100-continue\r\n"...)
	}
	switch {
	case req.Chunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case req.ContentLength >= 0:
		dst = http1.AppendHeaderInt(dst, "Content-Length", req.ContentLength)
	}
	return append(dst, '\r', '\n')
}

var hostName = []byte("Host")

// ownField is a set of the request fields the proxy writes itself and that
// set_headers replaces (as nginx's proxy_set_header Host does): bit i stands for
// ownFields[i].
type ownField uint8

const (
	ownHost ownField = 1 << iota
	ownXFF
	ownXFProto
	ownXFHost
	ownForwarded
	ownVia
	ownRealIP
)

var ownFields = [...]string{"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "via", "x-real-ip"}

// appendTarget appends the request-target sent upstream: with strip_prefix matching,
// the rest of the normalized path re-encoded (docs/routing.md), else the target as
// the client sent it (an absolute-form target in origin-form).
func (h *Handler) appendTarget(dst []byte, req *http1.Request) []byte {
	p := h.r.StripPrefix
	np := req.NormPath
	if p != "" && len(np) >= len(p) && string(np[:len(p)]) == p && (len(np) == len(p) || np[len(p)] == '/' || p == "/") {
		rest := np[len(p):]
		if p == "/" {
			rest = np
		}
		if len(rest) == 0 {
			dst = append(dst, '/')
		} else {
			dst = http1.AppendEscapedPath(dst, rest)
		}
		if req.Query != nil {
			dst = append(dst, '?')
			dst = append(dst, req.Query...)
		}
		return dst
	}
	if req.Form == http1.FormAbsolute {
		dst = append(dst, req.Path...)
		if req.Query != nil {
			dst = append(dst, '?')
			dst = append(dst, req.Query...)
		}
		return dst
	}
	return append(dst, req.Target...)
}

func (h *Handler) trusted(peer netip.Addr) bool {
	for _, p := range h.r.TrustedProxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// appendForwarding appends X-Forwarded-For, -Proto, -Host, X-Real-IP and Forwarded
// (RFC 7239), each unless set_headers replaces it; the protocol is https when the
// client's connection is TLS (secure).
// From a trusted peer the incoming values are kept and the peer is appended (an
// incoming X-Real-IP, the original client, is kept as it is); from any other peer
// they are replaced, so a client cannot forge its address. X-Real-IP is the field
// nginx configurations set to the client address (proxy_set_header X-Real-IP
// $remote_addr), and origins set up behind nginx trust it.
func (h *Handler) appendForwarding(dst []byte, req *http1.Request, peer netip.Addr, trusted, secure bool) []byte {
	proto := "http"
	if secure {
		proto = "https"
	}
	var ip [64]byte
	addr := peer.AppendTo(ip[:0])
	own := h.setOwn
	if own&ownXFF == 0 {
		dst = append(dst, "X-Forwarded-For: "...)
		if trusted {
			dst = appendJoined(dst, req, "x-forwarded-for")
		}
		dst = append(dst, addr...)
		dst = append(dst, "\r\n"...)
	}
	v, ok := req.Header("X-Forwarded-Proto")
	switch {
	case own&ownXFProto != 0:
	case trusted && ok:
		dst = http1.AppendHeaderBytes(dst, []byte("X-Forwarded-Proto"), v)
	default:
		dst = append(dst, "X-Forwarded-Proto: "...)
		dst = append(dst, proto...)
		dst = append(dst, "\r\n"...)
	}
	v, ok = req.Header("X-Forwarded-Host")
	switch {
	case own&ownXFHost != 0:
	case trusted && ok:
		dst = http1.AppendHeaderBytes(dst, []byte("X-Forwarded-Host"), v)
	case len(req.Host) > 0:
		dst = http1.AppendHeaderBytes(dst, []byte("X-Forwarded-Host"), req.Host)
	}
	v, ok = req.Header("X-Real-IP")
	switch {
	case own&ownRealIP != 0:
	case trusted && ok:
		dst = http1.AppendHeaderBytes(dst, []byte("X-Real-IP"), v)
	default:
		dst = append(dst, "X-Real-IP: "...)
		dst = append(dst, addr...)
		dst = append(dst, "\r\n"...)
	}
	if own&ownForwarded != 0 {
		return dst
	}
	dst = append(dst, "Forwarded: "...)
	if trusted {
		dst = appendJoined(dst, req, "forwarded")
	}
	dst = append(dst, "for="...)
	if peer.Is6() {
		dst = append(dst, "\"["...)
		dst = append(dst, addr...)
		dst = append(dst, "]\""...)
	} else {
		dst = append(dst, addr...)
	}
	if len(req.Host) > 0 {
		dst = append(dst, ";host=\""...)
		dst = append(dst, req.Host...)
		dst = append(dst, '"')
	}
	dst = append(dst, ";proto="...)
	dst = append(dst, proto...)
	return append(dst, "\r\n"...)
}

// appendJoined appends every value of the field name, each followed by ", ".
func appendJoined(dst []byte, req *http1.Request, name string) []byte {
	for _, f := range req.Headers {
		if http1.EqualFold(f.Name, name) && len(f.Value) > 0 {
			dst = append(dst, f.Value...)
			dst = append(dst, ", "...)
		}
	}
	return dst
}

// dropped are response fields the client's server writes itself.
var dropped = [...]string{"content-length", "date", "server"}

// responseFields appends the upstream response's end-to-end fields as raw lines.
func (h *Handler) responseFields(dst []byte, r *http1.Response) []byte {
	conns := connectionFields(r.Headers)
fields:
	for _, f := range r.Headers {
		if hopByHop(f.Name, conns) {
			continue
		}
		for _, n := range dropped {
			if http1.EqualFold(f.Name, n) {
				continue fields
			}
		}
		dst = http1.AppendHeaderBytes(dst, f.Name, f.Value)
	}
	if h.r.Via != "" {
		dst = appendVia(dst, 1, r.Minor, h.r.Via)
	}
	return dst
}

// appendVia appends a Via field line naming the protocol the message was
// received with (HTTP/major.minor, written "1.0", "1.1" or "2") and the
// pseudonym. An earlier Via line of the message, forwarded as it came, stays
// before it: separate field lines are one comma-separated list (RFC 9110 §5.3).
func appendVia(dst []byte, major, minor int, name string) []byte {
	dst = append(dst, "Via: "...)
	if major >= 2 {
		dst = append(dst, '2')
	} else {
		dst = append(dst, '1', '.', byte('0'+min(max(minor, 0), 1)))
	}
	dst = append(dst, ' ')
	dst = append(dst, name...)
	return append(dst, '\r', '\n')
}
