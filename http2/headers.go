package http2

import (
	"strconv"
	"strings"

	"github.com/gale-server/gale/http1"
)

// Field is one header or trailer field. Names are lowercase on the wire in HTTP/2.
type Field struct {
	Name, Value string
}

// Priority is the RFC 9218 priority of a stream: Urgency 0 (most urgent) to 7, default 3;
// Incremental when the client can use a response as it arrives. The Conn offers streams
// waiting for send window to OnWritable in urgency order.
type Priority struct {
	Urgency     uint8
	Incremental bool
}

// DefaultPriority is what a stream without a priority header field gets.
var DefaultPriority = Priority{Urgency: 3}

// ParsePriority reads an RFC 9218 priority field value (a structured-field dictionary) on
// top of p: members u (an integer 0…7) and i (a boolean) change it, anything else — other
// members, parameters, values of the wrong type — is ignored as the RFC requires.
func ParsePriority(v string, p Priority) Priority {
	for v != "" {
		var member string
		member, v, _ = strings.Cut(v, ",")
		member = strings.TrimSpace(member)
		member, _, _ = strings.Cut(member, ";")
		key, val, hasVal := strings.Cut(member, "=")
		switch key {
		case "u":
			if n, err := strconv.Atoi(val); hasVal && err == nil && n >= 0 && n <= 7 {
				p.Urgency = uint8(n)
			}
		case "i":
			switch {
			case !hasVal || val == "?1":
				p.Incremental = true
			case val == "?0":
				p.Incremental = false
			}
		}
	}
	return p
}

// requestHeaders collects the fields of one request field section while the HPACK decoder
// emits them, checking RFC 9113 §8.2 and §8.3 as it goes.
type requestHeaders struct {
	method, scheme, authority, path, protocol string
	fields                                    []Field
	size                                      uint32 // RFC 9113 §6.5.2 size so far
	lineBytes                                 int    // regular fields as HTTP/1.1 counts them (Config.MaxHeaderBytes)
	nfields                                   int    // regular fields, cookies as one (Config.MaxHeaderFields)
	cookies                                   bool   // a cookie field was counted
	lineLen                                   int    // :method and :path, against Config.MaxRequestLine
	uriTooLong                                bool   // tooLarge for the request line: 414, not 431
	tooLarge                                  bool
	trailers                                  bool
	regularSeen                               bool
	contentLength                             int64
	hosts                                     int // host fields seen
	priority                                  Priority
	err                                       string // first malformation found, "" if none
}

func (h *requestHeaders) reset(trailers bool) {
	*h = requestHeaders{fields: h.fields[:0], trailers: trailers, contentLength: -1, priority: DefaultPriority}
}

func (h *requestHeaders) fail(reason string) {
	if h.err == "" {
		h.err = reason
	}
}

// add takes one decoded field, measuring the section against cfg's limits.
func (h *requestHeaders) add(name, value string, cfg *Config) {
	h.size += uint32(len(name)) + uint32(len(value)) + 32
	if name == ":method" || name == ":path" {
		h.lineLen += len(value)
		if !h.tooLarge && h.lineLen+10 > cfg.MaxRequestLine {
			h.tooLarge, h.uriTooLong = true, true
		}
	} else if !strings.HasPrefix(name, ":") {
		// As HTTP/1.1 counts the same section: a field line each, the split
		// cookie joined into one (RFC 9113 §8.2.3).
		if name == "cookie" && h.cookies {
			h.lineBytes += len(value) + 2
		} else {
			h.lineBytes += len(name) + len(value) + 4
			h.nfields++
			h.cookies = h.cookies || name == "cookie"
		}
	}
	if h.size > cfg.MaxHeaderListSize || h.lineBytes > cfg.MaxHeaderBytes || h.nfields > cfg.MaxHeaderFields {
		h.tooLarge = true
	}
	if h.tooLarge || h.err != "" {
		return
	}
	if !validFieldValue(value) {
		h.fail("invalid character in field value")
		return
	}
	if strings.HasPrefix(name, ":") {
		h.addPseudo(name, value)
		return
	}
	h.regularSeen = true
	if !validFieldName(name) {
		h.fail("field name is not a lowercase token")
		return
	}
	// What RFC 9110 §6.5.1 keeps out of trailers (framing, routing, authentication,
	// cookies …) makes trailers malformed, as net/http's server treats it; gale's
	// HTTP/1.1 parser answers such chunked trailers 400, and neither protocol
	// forwards them.
	if h.trailers && http1.ForbiddenTrailer([]byte(name)) {
		h.fail(name + " in trailers")
		return
	}
	switch name {
	case "host":
		h.hosts++
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
		h.fail("connection-specific field " + name)
		return
	case "te":
		if value != "trailers" {
			h.fail("te other than trailers")
			return
		}
	case "content-length":
		if h.trailers {
			break
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || value[0] == '+' {
			h.fail("invalid content-length")
			return
		}
		if h.contentLength >= 0 && h.contentLength != n {
			h.fail("conflicting content-length")
			return
		}
		h.contentLength = n
	case "priority":
		if !h.trailers {
			h.priority = ParsePriority(value, h.priority)
		}
	}
	h.fields = append(h.fields, Field{Name: name, Value: value})
}

func (h *requestHeaders) addPseudo(name, value string) {
	if h.trailers {
		h.fail("pseudo-header in trailers")
		return
	}
	if h.regularSeen {
		h.fail("pseudo-header after a regular field")
		return
	}
	var dst *string
	switch name {
	case ":method":
		dst = &h.method
	case ":scheme":
		dst = &h.scheme
	case ":authority":
		dst = &h.authority
	case ":path":
		dst = &h.path
	case ":protocol":
		dst = &h.protocol
	default:
		h.fail("unknown pseudo-header " + name)
		return
	}
	if *dst != "" || value == "" && name != ":authority" {
		h.fail("duplicate or empty " + name)
		return
	}
	*dst = value
}

// finish checks the section as a whole once the block has been decoded.
func (h *requestHeaders) finish() {
	if h.err != "" || h.tooLarge || h.trailers {
		return
	}
	if h.protocol != "" {
		h.fail(":protocol without extended CONNECT")
		return
	}
	if h.method == "" {
		h.fail("missing :method")
		return
	}
	// The method, scheme and host are written into an HTTP/1.1 request line and Host
	// field by the proxy and matched by the router: they must have the syntax gale's
	// HTTP/1.1 parser requires, or ":method: GET /admin?" would reach an HTTP/1.1
	// upstream as the request line "GET /admin? /public/x HTTP/1.1".
	if !http1.IsToken(h.method) {
		h.fail("invalid :method")
		return
	}
	// :authority (empty when none was sent) carries no userinfo (RFC 9113 §8.3.1).
	if !http1.ValidHost(h.authority) {
		h.fail("invalid :authority")
		return
	}
	if h.method == "CONNECT" {
		if h.authority == "" || h.scheme != "" || h.path != "" {
			h.fail("CONNECT needs :authority and no :scheme or :path")
		}
		return
	}
	if h.scheme == "" || h.path == "" {
		h.fail("missing :scheme or :path")
		return
	}
	if !validScheme(h.scheme) {
		h.fail("invalid :scheme")
		return
	}
	if h.path[0] != '/' && (h.path != "*" || h.method != "OPTIONS") || !validPath(h.path) {
		h.fail("invalid :path")
		return
	}
	if h.hosts > 1 {
		h.fail("more than one host field")
		return
	}
	host := h.authority
	for _, f := range h.fields {
		if f.Name != "host" {
			continue
		}
		if h.authority != "" && f.Value != h.authority {
			h.fail("host differs from :authority")
			return
		}
		if !http1.ValidHost(f.Value) {
			h.fail("invalid host")
			return
		}
		host = f.Value
	}
	// An http or https request names its host in :authority or host, not empty (RFC
	// 9113 §8.3.1); gale's HTTP/1.1 parser answers 400 to the same request without
	// Host or with an empty one, and nginx answers this one 400.
	if host == "" && (h.scheme == "http" || h.scheme == "https") {
		h.fail("no :authority or host")
	}
}

// validPath reports whether every byte of a :path may appear in an HTTP/1.1
// request-target as gale's HTTP/1.1 parser takes it: visible ASCII other than
// '#', or obs-text. A control byte, a space or a fragment in :path would reach
// routing, logs and an HTTP/1.1 upstream that refuses (or splits on) it.
func validPath(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// validScheme reports whether s is a URI scheme (RFC 3986 §3.1):
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c >= 'a' && c <= 'z' || i > 0 && (s[i] >= '0' && s[i] <= '9' || s[i] == '+' || s[i] == '-' || s[i] == '.') {
			continue
		}
		return false
	}
	return s != ""
}

// validFieldName reports whether s is a non-empty token without uppercase letters.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// validFieldValue rejects whitespace at either end (RFC 9113 §8.2.1) and any byte
// gale's HTTP/1.1 parser refuses in a field value (http1.ValidFieldValue: controls
// other than HTAB, and DEL, besides the NUL, CR and LF RFC 9113 names), as RFC 9113
// §8.2.1 lets an implementation that validates by RFC 9110 §5.5 do: a field the
// HTTP/1.1 side answers 400 is not forwarded to an HTTP/1.1 upstream from HTTP/2.
func validFieldValue(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[0] == '\t' || s[len(s)-1] == ' ' || s[len(s)-1] == '\t' {
		return false
	}
	return http1.ValidFieldValue(s)
}
