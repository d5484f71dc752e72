package http1

import "encoding/binary"

// Character classes from RFC 9110 §5.6.2 (token), §5.5 (field values) and RFC 3986
// (request targets and hosts), as 256-entry lookup tables.
var (
	tcharTab  [256]bool // tchar: token characters
	vcharTab  [256]bool // field-vchar, SP and HTAB: what a field value may contain
	targetTab [256]bool // bytes accepted in a request-target (see doc.go)
	hostTab   [256]bool // reg-name, IPv4 and port characters of a Host value
)

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
		tcharTab[c] = alnum || contains("!#$%&'*+-.^_`|~", b)
		vcharTab[c] = b == ' ' || b == '\t' || b >= 0x21 && b != 0x7f
		targetTab[c] = b >= 0x21 && b != 0x7f && b != '#'
		// unreserved / pct-encoded / sub-delims, plus ':' before the port.
		hostTab[c] = alnum || contains("-._~%!$&'()*+,;=:", b)
	}
}

func contains(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// IsToken reports whether b is a non-empty token (RFC 9110 §5.6.2): the syntax of
// methods, field names and transfer codings.
func IsToken[T string | []byte](b T) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if !tcharTab[b[i]] {
			return false
		}
	}
	return true
}

// ValidFieldName reports whether name may be sent as a field name: a token, so it
// can carry no space, colon, CR or LF (no header injection).
func ValidFieldName[T string | []byte](name T) bool { return IsToken(name) }

// ValidFieldValue reports whether every byte of v may appear in a field value
// (RFC 9110 §5.5): VCHAR, obs-text, SP and HTAB; never CR, LF, NUL or DEL, so a
// value cannot split a message.
func ValidFieldValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if !vcharTab[v[i]] {
			return false
		}
	}
	return true
}

// ValidField reports whether name and value can be sent as one field line.
func ValidField(name, value string) bool { return IsToken(name) && ValidFieldValue(value) }

// Lower returns the ASCII lower case of c.
func Lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// foldEq reports whether b equals s ignoring ASCII case. s must be lower case.
func foldEq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if Lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// EqualFold reports whether b equals s ignoring ASCII case (field names, tokens and
// hosts are case-insensitive ASCII; no Unicode folding, unlike strings.EqualFold).
func EqualFold[T string | []byte](b T, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if Lower(b[i]) != Lower(s[i]) {
			return false
		}
	}
	return true
}

// TrimOWS removes leading and trailing optional whitespace (SP and HTAB, RFC 9110 §5.6.3)
// from a field value or list element.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// nextListItem splits the first element off a comma-separated list (RFC 9110 §5.6.1).
// It returns the element without surrounding OWS and the rest after the comma.
func nextListItem(list []byte) (item, rest []byte) {
	for i, c := range list {
		if c == ',' {
			return TrimOWS(list[:i]), list[i+1:]
		}
	}
	return TrimOWS(list), nil
}

// ParseDecimal parses 1*DIGIT into a non-negative int64; it fails on anything else
// (signs, spaces, an empty string) and on overflow. Content-Length, ports and
// configuration sizes use it.
func ParseDecimal[T string | []byte](b T) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v int64
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (1<<63-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// ValidHost reports whether b is uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2):
// the Host field of HTTP/1.1 and the :authority and host fields of HTTP/2 are checked
// with it, so both protocols route and forward only hosts of this syntax (no userinfo,
// no unterminated IP literal, a port of digits). An empty value is valid syntax;
// whether it is acceptable is the caller's decision.
func ValidHost[T string | []byte](b T) bool {
	if len(b) == 0 {
		return true
	}
	i := 0
	if b[0] == '[' {
		// IP-literal: IPv6address / IPvFuture, with an optional zone (RFC 6874).
		for i = 1; i < len(b) && b[i] != ']'; i++ {
			if !hostTab[b[i]] {
				return false
			}
		}
		if i == len(b) || i == 1 {
			return false
		}
		i++
		if i == len(b) {
			return true
		}
		if b[i] != ':' {
			return false
		}
		return allDigits(b[i+1:])
	}
	for ; i < len(b) && b[i] != ':'; i++ {
		if !hostTab[b[i]] {
			return false
		}
	}
	if i == 0 {
		return false
	}
	if i == len(b) {
		return true
	}
	return allDigits(b[i+1:])
}

// allDigits reports whether b is *DIGIT (possibly empty, as RFC 3986 allows for port).
func allDigits[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if c := b[i]; c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// SWAR constants: every byte 0x01, and every byte 0x80.
const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// hasLess reports whether some byte of x is below n (n <= 128). Borrows only start at a
// byte that is below n, so the answer is exact even though the flagged lane may not be.
func hasLess(x uint64, n byte) bool { return (x-lo8*uint64(n))&^x&hi8 != 0 }

// hasByte reports whether some byte of x equals c.
func hasByte(x uint64, c byte) bool { y := x ^ lo8*uint64(c); return (y-lo8)&^y&hi8 != 0 }

// validValue reports whether every byte of v may appear in a field value: VCHAR,
// obs-text, SP or HTAB (RFC 9110 §5.5). Eight bytes are checked at a time; a word holding
// a control byte (HTAB included) or DEL is re-checked byte by byte.
func validValue(v []byte) bool {
	for len(v) >= 8 {
		x := binary.LittleEndian.Uint64(v)
		if hasLess(x, 0x20) || hasByte(x, 0x7f) {
			break
		}
		v = v[8:]
	}
	return ValidFieldValue(v)
}

// validTarget reports whether every byte of t may appear in a request-target: visible
// ASCII other than '#', or obs-text (see doc.go).
func validTarget(t []byte) bool {
	for len(t) >= 8 {
		x := binary.LittleEndian.Uint64(t)
		if hasLess(x, 0x21) || hasByte(x, 0x7f) || hasByte(x, '#') {
			break
		}
		t = t[8:]
	}
	for _, c := range t {
		if !targetTab[c] {
			return false
		}
	}
	return true
}
