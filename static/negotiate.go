package static

import (
	"bytes"

	"github.com/gale-server/gale/http1"
)

// encoding is a set of content codings, as bits.
type encoding uint8

// The content codings served from precompressed siblings, in server preference order
// when the client weights them equally.
const (
	encBrotli encoding = 1 << iota // file.br, Content-Encoding: br
	encZstd                        // file.zst, Content-Encoding: zstd
	encGzip                        // file.gz, Content-Encoding: gzip
)

// encodings lists the codings in preference order with their file suffix and name.
var encodings = [...]struct {
	enc    encoding
	suffix string
	name   string
}{
	{encBrotli, ".br", "br"},
	{encZstd, ".zst", "zstd"},
	{encGzip, ".gz", "gzip"},
}

// eachListItem calls fn for each non-empty element of a comma-separated header list
// (RFC 9110 §5.6.1) with the element's first token (text before any ';', trimmed) and
// its weight in thousandths (RFC 9110 §12.4.2): 1000 without a q parameter, -1 when
// the q parameter is malformed. Quoted strings in parameters may contain commas and
// semicolons. fn returns false to stop. The whole list is visited: it is never cut
// short, since an element past a cut could change the answer; the parser's header
// section limit bounds its length, and the walk is linear in it.
func eachListItem(v []byte, fn func(token []byte, q int) bool) {
	for len(v) > 0 {
		elem, rest := cutListElement(v)
		v = rest
		elem = http1.TrimOWS(elem)
		if len(elem) == 0 {
			continue
		}
		token, params := cutParam(elem)
		q := 1000
		for len(params) > 0 {
			var p []byte
			p, params = cutParam(params)
			if len(p) >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=' {
				q = parseQValue(p[2:])
				break
			}
		}
		if !fn(http1.TrimOWS(token), q) {
			return
		}
	}
}

// cutListElement splits v at the first comma outside a quoted string.
func cutListElement(v []byte) (elem, rest []byte) {
	i := indexOutsideQuotes(v, ',')
	if i < 0 {
		return v, nil
	}
	return v[:i], v[i+1:]
}

// cutParam splits s at the first ';' outside a quoted string and trims both halves.
func cutParam(s []byte) (head, tail []byte) {
	i := indexOutsideQuotes(s, ';')
	if i < 0 {
		return http1.TrimOWS(s), nil
	}
	return http1.TrimOWS(s[:i]), http1.TrimOWS(s[i+1:])
}

func indexOutsideQuotes(s []byte, sep byte) int {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			return i
		}
	}
	return -1
}

// parseQValue parses qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) into
// thousandths, or -1 when malformed.
func parseQValue(b []byte) int {
	if len(b) == 0 || len(b) > 5 || (b[0] != '0' && b[0] != '1') {
		return -1
	}
	q := int(b[0]-'0') * 1000
	if len(b) == 1 {
		return q
	}
	if b[1] != '.' {
		return -1
	}
	scale := 100
	for _, c := range b[2:] {
		if c < '0' || c > '9' {
			return -1
		}
		q += int(c-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return -1
	}
	return q
}

// negotiateEncoding picks the content coding to serve from avail for an
// Accept-Encoding value (RFC 9110 §12.5.3), or 0 for identity. A coding is acceptable
// when listed with q > 0, or matched by "*" with q > 0 when not listed; q=0 excludes it.
// The chosen coding has the highest weight, ties going to br, then zstd, then gzip, and
// it must weigh at least as much as identity. Only the first occurrence of a coding
// counts; malformed weights make an element count as absent.
func negotiateEncoding(accept []byte, avail encoding) encoding {
	var q [len(encodings)]int
	for i := range q {
		q[i] = -1
	}
	star, identity := -1, -1
	eachListItem(accept, func(tok []byte, w int) bool {
		if w < 0 {
			return true
		}
		switch {
		case bytes.Equal(tok, []byte("*")):
			if star < 0 {
				star = w
			}
		case bytes.EqualFold(tok, []byte("identity")):
			if identity < 0 {
				identity = w
			}
		case bytes.EqualFold(tok, []byte("x-gzip")):
			setFirst(&q[2], w)
		default:
			for i, e := range encodings {
				if bytes.EqualFold(tok, []byte(e.name)) {
					setFirst(&q[i], w)
				}
			}
		}
		return true
	})
	if identity < 0 {
		identity = 1
		if star == 0 {
			identity = 0
		}
	}
	best, bestQ := encoding(0), 0
	for i, e := range encodings {
		if avail&e.enc == 0 {
			continue
		}
		w := q[i]
		if w < 0 {
			w = star
		}
		if w > bestQ && w >= identity {
			best, bestQ = e.enc, w
		}
	}
	return best
}

func setFirst(dst *int, w int) {
	if *dst < 0 {
		*dst = w
	}
}

// wantsJSON reports whether an Accept value prefers application/json to text/html for
// a directory listing: application/json must be listed explicitly with q > 0 and weigh
// at least as much as text/html (or text/*, or */*, whichever is most specific).
func wantsJSON(accept []byte) bool {
	jsonQ, htmlQ, textQ, anyQ := -1, -1, -1, -1
	eachListItem(accept, func(tok []byte, w int) bool {
		switch {
		case bytes.EqualFold(tok, []byte("application/json")):
			setFirst(&jsonQ, w)
		case bytes.EqualFold(tok, []byte("text/html")):
			setFirst(&htmlQ, w)
		case bytes.EqualFold(tok, []byte("text/*")):
			setFirst(&textQ, w)
		case bytes.Equal(tok, []byte("*/*")):
			setFirst(&anyQ, w)
		}
		return true
	})
	if jsonQ <= 0 {
		return false
	}
	h := htmlQ
	if h < 0 {
		h = textQ
	}
	if h < 0 {
		h = anyQ
	}
	return jsonQ >= h
}
