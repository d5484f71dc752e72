package lb

import (
	"bytes"
	"fmt"
	"strings"
)

// KeyKind is where a request's hash key comes from.
type KeyKind uint8

// Key sources, written in configuration (hash_key:) as ip, uri, header:NAME,
// cookie:NAME and query:NAME.
const (
	KeyIP     KeyKind = iota // the client's address (after a trusted PROXY header)
	KeyURI                   // the request-target in origin form (path and query)
	KeyHeader                // the value of a request header field
	KeyCookie                // the value of a cookie
	KeyQuery                 // the raw (still percent-encoded) value of a query parameter
)

// KeySpec is a parsed hash_key.
type KeySpec struct {
	Kind KeyKind
	// Name is the header field (lower case), cookie or query parameter name;
	// empty for ip and uri.
	Name string
}

// MaxKeyName bounds the NAME of header:, cookie: and query: keys.
const MaxKeyName = 256

// ParseKey parses a hash_key value. A request without the named field,
// cookie or parameter hashes the empty key (all such requests go to one
// server); see docs/proxy.md.
func ParseKey(s string) (KeySpec, error) {
	switch s {
	case "ip":
		return KeySpec{Kind: KeyIP}, nil
	case "uri":
		return KeySpec{Kind: KeyURI}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	var k KeySpec
	switch kind {
	case "header":
		k.Kind = KeyHeader
	case "cookie":
		k.Kind = KeyCookie
	case "query":
		k.Kind = KeyQuery
	default:
		return k, fmt.Errorf("unknown hash key %q: expected ip, uri, header:NAME, cookie:NAME or query:NAME", s)
	}
	if !ok || name == "" {
		return k, fmt.Errorf("hash key %q needs a name after the colon, like %s:session", s, kind)
	}
	if len(name) > MaxKeyName {
		return k, fmt.Errorf("hash key name is %d bytes long; at most %d are allowed", len(name), MaxKeyName)
	}
	for i := 0; i < len(name); i++ {
		if !tokenChar(name[i]) {
			return k, fmt.Errorf("hash key name %q has the character %q, which is not allowed in a %s name (letters, digits and !#$%%&'*+-.^_`|~)", name, name[i], kind)
		}
	}
	if k.Kind == KeyHeader {
		name = strings.ToLower(name)
	}
	k.Name = name
	return k, nil
}

// String returns the spec as written in configuration.
func (k KeySpec) String() string {
	switch k.Kind {
	case KeyIP:
		return "ip"
	case KeyURI:
		return "uri"
	case KeyHeader:
		return "header:" + k.Name
	case KeyCookie:
		return "cookie:" + k.Name
	}
	return "query:" + k.Name
}

// tokenChar reports an RFC 9110 tchar.
func tokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// CookieValue returns the value of the first cookie called name in a Cookie
// field value (RFC 6265 §4.2.1: name=value pairs separated by ";" and
// optional spaces), without surrounding double quotes. Names compare
// case-sensitively. Pairs without "=" are ignored.
func CookieValue(field []byte, name string) ([]byte, bool) {
	for len(field) > 0 {
		var pair []byte
		if i := bytes.IndexByte(field, ';'); i >= 0 {
			pair, field = field[:i], field[i+1:]
		} else {
			pair, field = field, nil
		}
		pair = trimOWS(pair)
		eq := bytes.IndexByte(pair, '=')
		if eq < 0 || string(trimOWS(pair[:eq])) != name {
			continue
		}
		v := trimOWS(pair[eq+1:])
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v, true
	}
	return nil, false
}

// QueryValue returns the raw value of the first parameter called name in a
// query (the part of the target after "?", without it): parameters are
// separated by "&", a parameter without "=" has the empty value. Neither the
// name nor the value is percent-decoded: "a%20b" and "a+b" are different keys.
func QueryValue(query []byte, name string) ([]byte, bool) {
	for len(query) > 0 {
		var p []byte
		if i := bytes.IndexByte(query, '&'); i >= 0 {
			p, query = query[:i], query[i+1:]
		} else {
			p, query = query, nil
		}
		k, v := p, []byte(nil)
		if eq := bytes.IndexByte(p, '='); eq >= 0 {
			k, v = p[:eq], p[eq+1:]
		}
		if string(k) == name {
			return v, true
		}
	}
	return nil, false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
