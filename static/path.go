package static

// maxPathLen bounds the raw request path; longer paths are answered 414.
const maxPathLen = 4096

// cleanedPath is a request path reduced to a relative, slash-separated file path that
// cannot name anything above the root.
type cleanedPath struct {
	// rel has no leading or trailing slash, no empty, "." or ".." segment and no NUL,
	// backslash or control byte. "" is the root directory itself.
	rel string
	// dir reports that the request path ended in '/' (or in a "." segment), which asks
	// for a directory.
	dir bool
	// dotfile reports that some segment starts with '.', other than ".well-known".
	dotfile bool
}

// cleanPath decodes and checks a raw request path (as sent, without the query). It
// returns status 0 and the cleaned path, or the HTTP status to answer with:
// 414 for a path longer than maxPathLen, 400 for a path that does not start with '/',
// invalid percent-encoding, a ".." segment (literal or encoded), a NUL, backslash or
// control byte (literal or encoded), or an encoded '/' (%2F), which would make one
// segment look like two. Percent-decoding happens exactly once, so "%252e%252e" is the
// literal file name "%2e%2e", never "..".
func cleanPath(raw []byte) (cleanedPath, int) {
	var p cleanedPath
	if len(raw) > maxPathLen {
		return p, 414
	}
	if len(raw) == 0 || raw[0] != '/' {
		return p, 400
	}
	if plainPath(raw) {
		return cleanPlain(raw), 0
	}
	out := make([]byte, 0, len(raw))
	seg := make([]byte, 0, 64)
	for i := 1; i <= len(raw); i++ {
		if i == len(raw) || raw[i] == '/' {
			var status int
			if out, status = appendSegment(out, seg, &p); status != 0 {
				return cleanedPath{}, status
			}
			p.dir = len(seg) == 0 || (len(seg) == 1 && seg[0] == '.')
			seg = seg[:0]
			continue
		}
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) {
				return cleanedPath{}, 400
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return cleanedPath{}, 400
			}
			c = hi<<4 | lo
			i += 2
			if c == '/' {
				return cleanedPath{}, 400
			}
		}
		if c == '\\' || c < ' ' || c == 0x7f {
			return cleanedPath{}, 400
		}
		seg = append(seg, c)
	}
	p.rel = string(out)
	return p, 0
}

// appendSegment adds one decoded segment to out, dropping empty and "." segments and
// refusing "..".
func appendSegment(out, seg []byte, p *cleanedPath) ([]byte, int) {
	switch string(seg) {
	case "", ".":
		return out, 0
	case "..":
		return out, 400
	}
	if seg[0] == '.' && string(seg) != ".well-known" {
		p.dotfile = true
	}
	if len(out) > 0 {
		out = append(out, '/')
	}
	return append(out, seg...), 0
}

// plainPath reports whether raw needs neither decoding nor segment surgery: no '%',
// backslash or control byte, no empty segment, and no segment starting with '.'. Such
// a path (the common case) is cleaned with one allocation.
func plainPath(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%' || c == '\\' || c < ' ' || c == 0x7f:
			return false
		case c == '/' && i+1 < len(raw) && (raw[i+1] == '/' || raw[i+1] == '.'):
			return false
		}
	}
	return true
}

func cleanPlain(raw []byte) cleanedPath {
	p := cleanedPath{dir: raw[len(raw)-1] == '/'}
	rel := raw[1:]
	if p.dir && len(rel) > 0 {
		rel = rel[:len(rel)-1]
	}
	p.rel = string(rel)
	return p
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// escapePath percent-encodes a cleaned relative path for use in a Location field or
// an href: every byte outside the RFC 3986 unreserved set and the sub-delims that are
// safe in a path is encoded, and '/' separators are kept.
func escapePath(rel string) string {
	const hexDigits = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(rel); i++ {
		if !pathSafe(rel[i]) {
			n++
		}
	}
	if n == 0 {
		return rel
	}
	b := make([]byte, 0, len(rel)+2*n)
	for i := 0; i < len(rel); i++ {
		c := rel[i]
		if pathSafe(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return string(b)
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
