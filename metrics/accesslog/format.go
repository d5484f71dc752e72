package accesslog

import (
	"crypto/tls"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gale-server/gale/server"
)

// stamp caches one loop's formatted times for the current second, so that
// a line costs a copy instead of a time format.
type stamp struct {
	sec      int64
	combined []byte // 02/Jan/2006:15:04:05 -0700
	iso      []byte // 2006-01-02T15:04:05 (milliseconds and zone are added per line)
	zone     []byte // -07:00
}

func (s *stamp) update(t time.Time) {
	if sec := t.Unix(); sec != s.sec || s.combined == nil {
		s.sec = sec
		s.combined = t.AppendFormat(s.combined[:0], "02/Jan/2006:15:04:05 -0700")
		s.iso = t.AppendFormat(s.iso[:0], "2006-01-02T15:04:05")
		s.zone = t.AppendFormat(s.zone[:0], "Z07:00")
	}
}

// end returns when the response ended: its start plus its duration.
func end(c server.Observed, d time.Duration) time.Time { return c.Began().Add(d) }

// appendCombined appends an nginx combined line:
// remote - - [time] "request" status bytes "referer" "user-agent".
func appendCombined(b []byte, st *stamp, c server.Observed, status int, d time.Duration) []byte {
	st.update(end(c, d))
	b = appendAddr(b, c.RemoteAddr())
	b = append(b, " - - ["...)
	b = append(b, st.combined...)
	b = append(b, `] "`...)
	b = appendEscaped(b, c.Method())
	b = append(b, ' ')
	b = appendEscaped(b, c.Target())
	b = append(b, ' ')
	b = append(b, c.Proto()...)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, c.BodyBytes(), 10)
	b = append(b, ` "`...)
	b = appendHeader(b, c, "Referer")
	b = append(b, `" "`...)
	b = appendHeader(b, c, "User-Agent")
	return append(b, "\"\n"...)
}

// appendHeader appends a request header escaped for a quoted field, or "-".
func appendHeader(b []byte, c server.Observed, name string) []byte {
	v, ok := c.ReqHeader(name)
	if !ok {
		return append(b, '-')
	}
	return appendEscaped(b, v)
}

// appendAddr appends the client IP without port.
func appendAddr(b []byte, ap netip.AddrPort) []byte {
	if !ap.IsValid() {
		return append(b, '-')
	}
	return ap.Addr().AppendTo(b)
}

const hex = "0123456789ABCDEF"

// appendEscaped appends s with '"', '\\', control and non-ASCII bytes written
// \xHH, as nginx escapes variables in its logs.
func appendEscaped(b, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return b
}

// appendJSON appends one JSON object (docs/observability.md lists the
// fields).
func (l *Log) appendJSON(b []byte, st *stamp, c server.Observed, route string, status int, d time.Duration) []byte {
	t := end(c, d)
	st.update(t)
	b = append(b, `{"time":"`...)
	b = append(b, st.iso...)
	b = append(b, '.')
	ms := t.Nanosecond() / 1e6
	b = append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	b = append(b, st.zone...)
	b = append(b, `","remote":"`...)
	b = appendAddr(b, c.RemoteAddr())
	// Server and route names are validated by config to need no escaping.
	b = append(b, `","server":"`...)
	b = append(b, l.opts.Server...)
	b = append(b, `","route":"`...)
	b = append(b, route...)
	b = append(b, `","method":`...)
	b = appendJSONString(b, c.Method())
	b = append(b, `,"path":`...)
	b = appendJSONString(b, c.Target())
	b = append(b, `,"host":`...)
	b = appendJSONString(b, c.Host())
	if c.Proto() == "HTTP/2.0" {
		b = append(b, `,"proto":"h2","status":`...)
	} else {
		b = append(b, `,"proto":"h1","status":`...)
	}
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, c.BodyBytes(), 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendFloat(b, d.Seconds(), 'f', 6, 64)
	if v, ok := c.ReqHeader("Referer"); ok {
		b = append(b, `,"referer":`...)
		b = appendJSONString(b, v)
	}
	if v, ok := c.ReqHeader("User-Agent"); ok {
		b = append(b, `,"user_agent":`...)
		b = appendJSONString(b, v)
	}
	if up, ut := c.Upstream(); up.IsValid() {
		b = append(b, `,"upstream":"`...)
		b = up.AppendTo(b)
		b = append(b, `","upstream_time":`...)
		b = strconv.AppendFloat(b, ut.Seconds(), 'f', 6, 64)
	}
	if v := c.TLSVersion(); v != 0 {
		b = append(b, `,"tls":"`...)
		b = append(b, tlsName(v)...)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}

// tlsName names a TLS version as nginx's $ssl_protocol does.
func tlsName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return "unknown"
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
// Besides what JSON requires (quote, backslash, C0 controls), DEL, the C1 controls
// (U+0080 to U+009F, NEL among them) and U+2028 and U+2029 are written as six-character \u escapes (\u2028): tools
// that split text on any Unicode line break (Python's str.splitlines, JavaScript
// before ES2019) must still see one line per request, and a terminal showing the
// log must not act on a control byte a client sent.
func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			switch {
			case r == utf8.RuneError && n == 1:
				b = append(b, `\ufffd`...)
			case r <= 0x9f || r == 0x2028 || r == 0x2029:
				b = append(b, '\\', 'u', hex[r>>12], hex[r>>8&15], hex[r>>4&15], hex[r&15])
			default:
				b = append(b, s[i:i+n]...)
			}
			i += n
		}
	}
	return append(b, '"')
}
