package http1

import (
	"sync/atomic"
	"time"
)

// The append helpers below write response framing in the style of strconv.Append*: they
// append to dst and return the extended slice, and allocate only when dst must grow.

// AppendStatusLine appends "HTTP/1.<minor> <status> <reason>\r\n". A minor other than 0
// is written as 1. An unknown status gets an empty reason phrase, which RFC 9112 §4
// allows. status should be in 100..999; anything else is written as 500.
func AppendStatusLine(dst []byte, minor, status int) []byte {
	if minor == 0 {
		dst = append(dst, "HTTP/1.0 "...)
	} else {
		dst = append(dst, "HTTP/1.1 "...)
	}
	if status < 100 || status > 999 {
		status = 500
	}
	dst = append(dst, byte('0'+status/100), byte('0'+status/10%10), byte('0'+status%10), ' ')
	dst = append(dst, StatusText(status)...)
	return append(dst, '\r', '\n')
}

// AppendContinue appends the interim response "HTTP/1.1 100 Continue\r\n\r\n".
func AppendContinue(dst []byte) []byte {
	return append(dst, "HTTP/1.1 100 Continue\r\n\r\n"...)
}

// AppendHeader appends "name: value\r\n". So that a header cannot inject another, bytes
// of name that are not token characters become '-', and CR, LF and NUL in value become
// SP (as RFC 9110 §5.5 allows a recipient to do with CR, LF and NUL).
func AppendHeader(dst []byte, name, value string) []byte {
	dst = appendName(dst, name)
	dst = appendValue(dst, value)
	return append(dst, '\r', '\n')
}

// AppendHeaderBytes is AppendHeader for byte slices.
func AppendHeaderBytes(dst, name, value []byte) []byte {
	dst = appendName(dst, name)
	dst = appendValue(dst, value)
	return append(dst, '\r', '\n')
}

// AppendHeaderInt appends "name: <decimal v>\r\n", for Content-Length and the like.
func AppendHeaderInt(dst []byte, name string, v int64) []byte {
	dst = appendName(dst, name)
	dst = appendInt(dst, v)
	return append(dst, '\r', '\n')
}

// appendName appends a field name followed by ": ", replacing non-token bytes by '-'.
func appendName[T string | []byte](dst []byte, name T) []byte {
	clean := true
	for i := 0; i < len(name); i++ {
		if !tcharTab[name[i]] {
			clean = false
			break
		}
	}
	if clean {
		dst = append(dst, name...)
	} else {
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !tcharTab[c] {
				c = '-'
			}
			dst = append(dst, c)
		}
	}
	return append(dst, ':', ' ')
}

// appendValue appends a field value, replacing CR, LF and NUL by SP.
func appendValue[T string | []byte](dst []byte, value T) []byte {
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '\r' || c == '\n' || c == 0 {
			for j := 0; j < len(value); j++ {
				c := value[j]
				if c == '\r' || c == '\n' || c == 0 {
					c = ' '
				}
				dst = append(dst, c)
			}
			return dst
		}
	}
	return append(dst, value...)
}

// appendInt appends the decimal form of v.
func appendInt(dst []byte, v int64) []byte {
	if v < 0 {
		dst = append(dst, '-')
		if v == -1<<63 {
			return append(dst, "9223372036854775808"...)
		}
		v = -v
	}
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, buf[i:]...)
}

// AppendChunk appends p as one chunk: its size in hex, CRLF, p, CRLF (RFC 9112 §7.1).
// An empty p appends nothing, since a zero-size chunk would end the body.
func AppendChunk(dst, p []byte) []byte {
	if len(p) == 0 {
		return dst
	}
	dst = appendHex(dst, uint64(len(p)))
	dst = append(dst, '\r', '\n')
	dst = append(dst, p...)
	return append(dst, '\r', '\n')
}

// AppendChunkHeader appends only the size line of an n-byte chunk ("<hex n>\r\n"), for
// writers that send the data from elsewhere (followed by "\r\n"). n must be positive.
func AppendChunkHeader(dst []byte, n int) []byte {
	dst = appendHex(dst, uint64(n))
	return append(dst, '\r', '\n')
}

func appendHex(dst []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	var buf [16]byte
	i := len(buf)
	for {
		i--
		buf[i] = digits[v&15]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return append(dst, buf[i:]...)
}

// AppendLastChunk appends the last chunk "0\r\n", the trailer fields (sanitised as by
// AppendHeaderBytes) and the final CRLF.
func AppendLastChunk(dst []byte, trailers []Header) []byte {
	dst = append(dst, '0', '\r', '\n')
	for i := range trailers {
		dst = AppendHeaderBytes(dst, trailers[i].Name, trailers[i].Value)
	}
	return append(dst, '\r', '\n')
}

// dateLine is a rendered "Date: ...\r\n" line for one Unix second. It is immutable once
// published.
type dateLine struct {
	sec  int64
	line []byte
}

// cachedDate holds the most recent dateLine. Any goroutine may read or replace it.
var cachedDate atomic.Pointer[dateLine]

// AppendDate appends "Date: <IMF-fixdate>\r\n" (RFC 9110 §5.6.7) for the current time.
// See AppendDateAt.
func AppendDate(dst []byte) []byte { return AppendDateAt(dst, time.Now()) }

// AppendDateAt appends "Date: <IMF-fixdate>\r\n" for t, which an event loop passes from
// its cached clock. The line is rendered at most about once per second: a shared cache
// holds the line for the latest second seen, and is re-rendered (one small allocation)
// when the second changes. It is safe for concurrent use and starts no goroutine.
func AppendDateAt(dst []byte, t time.Time) []byte {
	sec := t.Unix()
	if d := cachedDate.Load(); d != nil && d.sec == sec {
		return append(dst, d.line...)
	}
	line := make([]byte, 0, len("Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"))
	line = append(line, "Date: "...)
	line = t.UTC().AppendFormat(line, "Mon, 02 Jan 2006 15:04:05 GMT")
	line = append(line, '\r', '\n')
	cachedDate.Store(&dateLine{sec: sec, line: line})
	return append(dst, line...)
}

// StatusText returns the reason phrase registered for code (RFC 9110 §15 and the IANA
// registry), or "" for an unknown code.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 102:
		return "Processing"
	case 103:
		return "Early Hints"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	case 203:
		return "Non-Authoritative Information"
	case 204:
		return "No Content"
	case 205:
		return "Reset Content"
	case 206:
		return "Partial Content"
	case 207:
		return "Multi-Status"
	case 208:
		return "Already Reported"
	case 226:
		return "IM Used"
	case 300:
		return "Multiple Choices"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 304:
		return "Not Modified"
	case 305:
		return "Use Proxy"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 402:
		return "Payment Required"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 407:
		return "Proxy Authentication Required"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 410:
		return "Gone"
	case 411:
		return "Length Required"
	case 412:
		return "Precondition Failed"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Range Not Satisfiable"
	case 417:
		return "Expectation Failed"
	case 418:
		return "I'm a teapot"
	case 421:
		return "Misdirected Request"
	case 422:
		return "Unprocessable Content"
	case 423:
		return "Locked"
	case 424:
		return "Failed Dependency"
	case 425:
		return "Too Early"
	case 426:
		return "Upgrade Required"
	case 428:
		return "Precondition Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 451:
		return "Unavailable For Legal Reasons"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	case 506:
		return "Variant Also Negotiates"
	case 507:
		return "Insufficient Storage"
	case 508:
		return "Loop Detected"
	case 510:
		return "Not Extended"
	case 511:
		return "Network Authentication Required"
	}
	return ""
}
