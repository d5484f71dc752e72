package http1

// Path normalization: the one spelling of a request path that routing, the file server
// and the proxy all act on (docs/routing.md). A decision taken on one spelling and
// carried out on another is an access-control bypass, so there is exactly one function.

// Errors returned by NormalizePath. All are request errors answered with 400.
var (
	errPathRelative = newErr(400, "path does not start with /")
	errPathEscape   = newErr(400, "invalid percent-encoding in path")
	errPathByte     = newErr(400, "NUL, control byte, backslash or encoded slash in path")
	errPathAbove    = newErr(400, "path climbs above the root")
	errPathDotParam = newErr(400, "dot segment with parameters in path")
)

// NormalizePath returns the normal form of an absolute request path (the path of an
// origin-form or absolute-form target, without "?query"):
//
//   - every percent-escape is decoded, exactly once ("%2570" becomes "%70", never "p");
//     hex digits may be of either case;
//   - runs of '/' are merged into one;
//   - "." and ".." segments are removed as RFC 3986 §5.2.4 says, also when spelled
//     with escapes ("%2e%2E"); a trailing "." or ".." segment leaves a trailing '/';
//   - a trailing '/' is kept, because it asks for a directory.
//
// It refuses, with a 400 *Error: a path that does not start with '/'; a '%' not followed
// by two hex digits; a NUL or other control byte, a backslash or a '/' that is
// percent-encoded (decoded "%2F" would make one segment two, and backslash is a
// separator to some upstreams); a ".." that climbs above the root; and a "." or ".."
// segment followed by ";parameters" (servlet containers read "..;x" as "..").
//
// The result contains no "//", no "." or ".." segment, no NUL, control byte or
// backslash, and starts with '/'; it may contain any other byte, '%' and '?' included,
// since it is decoded. NormalizePath(AppendEscapedPath(nil, n)) returns n for every
// result n. When path is already normal (no escapes, no dot segments, no repeated
// slashes: the common case) the result is path itself and nothing is copied or
// allocated; otherwise it is appended to dst[:0], which must not overlap path.
func NormalizePath(dst, path []byte) ([]byte, *Error) {
	n, _, err := normalizePath(dst, path)
	return n, err
}

// normalizePath is NormalizePath that also reports whether the result was written to
// dst (copied) rather than being path itself.
func normalizePath(dst, path []byte) (n []byte, copied bool, err *Error) {
	if len(path) == 0 || path[0] != '/' {
		return nil, false, errPathRelative
	}
	if normalPath(path) {
		return path, false, nil
	}
	out := dst[:0]
	dir := false
	for i := 0; i < len(path); {
		i++ // the '/' that starts the segment
		start := len(out)
		out = append(out, '/')
		for ; i < len(path) && path[i] != '/'; i++ {
			c := path[i]
			if c == '%' {
				if i+2 >= len(path) {
					return nil, false, errPathEscape
				}
				hi, lo := unhex(path[i+1]), unhex(path[i+2])
				if hi < 0 || lo < 0 {
					return nil, false, errPathEscape
				}
				c = byte(hi<<4 | lo)
				i += 2
				if c == '/' {
					return nil, false, errPathByte
				}
			}
			if c == '\\' || c < ' ' || c == 0x7f {
				return nil, false, errPathByte
			}
			out = append(out, c)
		}
		seg := out[start+1:]
		dir = false
		switch {
		case len(seg) == 0 || string(seg) == ".":
			out, dir = out[:start], true
		case string(seg) == "..":
			if start == 0 {
				return nil, false, errPathAbove
			}
			out = out[:lastSlash(out[:start])]
			dir = true
		case dotParam(seg):
			return nil, false, errPathDotParam
		}
	}
	if dir || len(out) == 0 {
		out = append(out, '/')
	}
	return out, true, nil
}

// normalPath reports whether p, which starts with '/', is already in normal form.
func normalPath(p []byte) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%' || c == '\\' || c < ' ' || c == 0x7f:
			return false
		case c == '/' && i+1 < len(p):
			switch p[i+1] {
			case '/':
				return false
			case '.':
				if dotSegment(p[i+1:]) {
					return false
				}
			}
		}
	}
	return true
}

// dotSegment reports whether the segment at the start of s (up to the next '/') is "."
// or "..", or one of them followed by ";parameters".
func dotSegment(s []byte) bool {
	end := 0
	for end < len(s) && s[end] != '/' {
		end++
	}
	seg := s[:end]
	return string(seg) == "." || string(seg) == ".." || dotParam(seg)
}

// dotParam reports whether seg is "." or ".." followed by ';' and parameters.
func dotParam(seg []byte) bool {
	return len(seg) >= 2 && seg[0] == '.' && (seg[1] == ';' || (seg[1] == '.' && len(seg) >= 3 && seg[2] == ';'))
}

// lastSlash returns the index of the last '/' in b (0 when b is "" or has none).
func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return 0
}

// AppendEscapedPath appends p percent-encoded for use as a URI path (an href, a Location
// field, a proxied request-target): '/' and the bytes RFC 3986 allows literally in a
// segment (unreserved, sub-delims, ':' and '@') are kept, every other byte becomes %XX
// with upper-case hex. For every result n of NormalizePath, NormalizePath of the escaped
// form is n again.
func AppendEscapedPath(dst, p []byte) []byte {
	const hexDigits = "0123456789ABCDEF"
	for _, c := range p {
		if pathSafe(c) {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return dst
}

func pathSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '/', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', '@', ':':
		return true
	}
	return false
}

// HostName returns the host of a Host field value or target authority in the form host
// matching compares: without the port, without the brackets of an IPv6 literal, and
// without one trailing dot ("Example.COM.:8080" gives "Example.COM"); ASCII case is
// left for the caller to fold. It returns a view of h and does not allocate.
func HostName(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		for i := 1; i < len(h); i++ {
			if h[i] == ']' {
				return h[1:i]
			}
		}
		return h
	}
	for i, c := range h {
		if c == ':' {
			h = h[:i]
			break
		}
	}
	if len(h) > 1 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	return h
}
