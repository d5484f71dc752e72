package http1

// Header is one field line: a name and a value with surrounding whitespace removed. In a
// Request both are views into the parsed input; in BodyReader.Trailers they are copies.
type Header struct {
	Name, Value []byte
}

// Form is the form of a request-target (RFC 9112 §3.2).
type Form uint8

// The four request-target forms.
const (
	FormOrigin    Form = iota // "/path?query"
	FormAbsolute              // "http://host/path?query", normally to proxies
	FormAuthority             // "host:port", only with CONNECT
	FormAsterisk              // "*", only with OPTIONS
)

// String returns the RFC name of the form.
func (f Form) String() string {
	switch f {
	case FormOrigin:
		return "origin-form"
	case FormAbsolute:
		return "absolute-form"
	case FormAuthority:
		return "authority-form"
	case FormAsterisk:
		return "asterisk-form"
	}
	return "invalid-form"
}

// Request is a parsed request head. Its byte slices are views into the input given to
// Parser.ParseHead and are valid only while that input is; callers that keep a request
// beyond that copy what they need. A Request is owned by the loop that parses into it.
type Request struct {
	// Method is the method token, case preserved (methods are case-sensitive).
	Method []byte
	// Target is the request-target exactly as sent.
	Target []byte
	// Path is the path of the target, still percent-encoded, without "?query". It is "/"
	// for an absolute-form target with an empty path, "*" for asterisk-form and empty for
	// authority-form.
	Path []byte
	// NormPath is Path in normal form (NormalizePath): decoded, with dot segments and
	// repeated slashes removed. Routing, the file server and the proxy act on it and on
	// nothing else. It is Path itself when Path is already normal (no copy), else a view
	// into storage the Request keeps across Reset. It is "*" for asterisk-form and empty
	// for authority-form. A Path that cannot be normalized fails ParseHead with 400.
	NormPath []byte
	// Query is what follows the first '?' in the target (without the '?'), or nil.
	Query []byte
	// Host is the authority from an absolute-form or authority-form target, otherwise the
	// Host field value (nil when absent, which only HTTP/1.0 allows).
	Host []byte
	// Form is the form of Target.
	Form Form
	// Minor is the minor version: 0 for HTTP/1.0, 1 for HTTP/1.1 and any later HTTP/1.x.
	Minor int
	// Headers holds the field lines in order, duplicates included. Its backing array is
	// kept across Reset so that a connection's requests do not allocate.
	Headers []Header
	// ContentLength is the Content-Length value, or -1 when absent (always -1 if Chunked).
	ContentLength int64
	// Chunked is true when Transfer-Encoding is exactly "chunked".
	Chunked bool
	// KeepAlive is true when the connection may carry another request after this one:
	// HTTP/1.1 unless Connection has "close"; HTTP/1.0 only with Connection "keep-alive".
	KeepAlive bool
	// Expect100 is true for "Expect: 100-continue" in an HTTP/1.1 request (RFC 9110
	// §10.1.1 says to ignore it in HTTP/1.0).
	Expect100 bool
	// Upgrade is true for an HTTP/1.1 request whose Connection field has the "upgrade"
	// token and which carries a non-empty Upgrade field.
	Upgrade bool
	// Close is true when the Connection field has the "close" token.
	Close bool

	// normBuf is the storage NormPath is written to when Path is not normal.
	normBuf []byte
}

// Reset clears r for the next request, keeping the Headers backing array and the
// storage of NormPath.
func (r *Request) Reset() {
	h, nb := r.Headers[:0], r.normBuf[:0]
	*r = Request{Headers: h, ContentLength: -1, normBuf: nb}
}

// normalize sets NormPath from Path (origin-form and absolute-form).
func (r *Request) normalize() *Error {
	n, copied, err := normalizePath(r.normBuf[:0], r.Path)
	if err != nil {
		return err
	}
	if copied {
		r.normBuf = n[:0]
	}
	r.NormPath = n
	return nil
}

// Header returns the value of the first field named name, compared without regard to
// ASCII case, and whether there was one. It does not allocate.
func (r *Request) Header(name string) ([]byte, bool) {
	for i := range r.Headers {
		if EqualFold(r.Headers[i].Name, name) {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// HasToken reports whether any field named name holds token as one element of its
// comma-separated list (RFC 9110 §5.6.1), ignoring ASCII case, surrounding whitespace and
// any ";parameters" after the element (so "TE: trailers;q=1" has "trailers"). It is meant
// for Connection, Upgrade, TE and similar token lists and does not allocate.
func (r *Request) HasToken(name, token string) bool {
	for i := range r.Headers {
		if !EqualFold(r.Headers[i].Name, name) {
			continue
		}
		if ListHasToken(r.Headers[i].Value, token) {
			return true
		}
	}
	return false
}

// ListHasToken reports whether a comma-separated field value (RFC 9110 §5.6.1) holds
// token, compared without case and ignoring parameters, as HasToken does per field.
func ListHasToken(list []byte, token string) bool {
	for list != nil {
		var item []byte
		item, list = nextListItem(list)
		for j, c := range item {
			if c == ';' {
				item = TrimOWS(item[:j])
				break
			}
		}
		if EqualFold(item, token) {
			return true
		}
	}
	return false
}

// finish applies the framing and connection rules of RFC 9112 §6 and §9 and RFC 9110
// §7.2, §7.6.1, §7.8 and §10.1.1 to a request whose head has been parsed without syntax
// errors. Checks run in a fixed order so that the reported error does not depend on the
// order of the field lines: Host, Content-Length, Content-Length with
// Transfer-Encoding, Transfer-Encoding, Expect, body size.
func (r *Request) finish(lim *Limits) *Error {
	var (
		hosts      int
		host       []byte
		cl         int64 = -1
		clErr      *Error
		te         bool
		teErr      *Error
		teChunked  bool // the last coding seen so far is chunked
		teOther    bool // a coding other than chunked came before chunked
		expectErr  *Error
		expect100  bool
		closeTok   bool
		keepTok    bool
		upgradeTok bool
		upgradeVal bool
	)
	for i := range r.Headers {
		name, v := r.Headers[i].Name, r.Headers[i].Value
		switch len(name) {
		case 4:
			if foldEq(name, "host") {
				hosts++
				host = v
			}
		case 14:
			if foldEq(name, "content-length") && clErr == nil {
				n, ok := ParseDecimal(v)
				switch {
				case !ok:
					clErr = errCLInvalid
				case cl >= 0 && n != cl:
					clErr = errCLConflict
				default:
					cl = n
				}
			}
		case 17:
			if foldEq(name, "transfer-encoding") {
				te = true
				if teErr == nil {
					teErr = scanCodings(v, &teChunked, &teOther)
				}
			}
		case 10:
			if foldEq(name, "connection") {
				closeTok = closeTok || ListHasToken(v, "close")
				keepTok = keepTok || ListHasToken(v, "keep-alive")
				upgradeTok = upgradeTok || ListHasToken(v, "upgrade")
			}
		case 6:
			if foldEq(name, "expect") {
				for list := v; list != nil; {
					var item []byte
					item, list = nextListItem(list)
					switch {
					case len(item) == 0:
					case foldEq(item, "100-continue"):
						expect100 = true
					default:
						expectErr = errExpect
					}
				}
			}
		case 7:
			if foldEq(name, "upgrade") && len(v) > 0 {
				upgradeVal = true
			}
		}
	}

	switch {
	case hosts > 1:
		return errHostMany
	case hosts == 0 && r.Minor == 1:
		return errHostMissing
	case hosts == 1 && !ValidHost(host):
		return errHostInvalid
	case hosts == 1 && len(host) == 0 && (r.Form == FormOrigin || r.Form == FormAsterisk):
		// The target URI would be "http:///path": RFC 9110 §4.2.1 has a recipient
		// reject an http URI with an empty host (nginx answers 400 too). An
		// absolute-form target names the host itself, and Host is ignored then.
		return errHostInvalid
	}
	if r.Form == FormOrigin || r.Form == FormAsterisk {
		r.Host = host
	}
	if clErr != nil {
		return clErr
	}
	if te {
		switch {
		case cl >= 0:
			return errCLAndTE
		case r.Minor == 0:
			return errTE10
		case teErr != nil:
			return teErr
		case !teChunked:
			return errTENotChunked
		case teOther:
			return errTEUnsupported
		}
		r.Chunked = true
	}
	if expectErr != nil {
		return expectErr
	}
	if lim.MaxBodyBytes > 0 && cl > lim.MaxBodyBytes {
		return errTooLarge
	}
	r.ContentLength = cl
	r.Close = closeTok
	r.KeepAlive = !closeTok && (r.Minor == 1 || keepTok)
	if r.Minor == 1 {
		r.Expect100 = expect100
		r.Upgrade = upgradeTok && upgradeVal
	}
	return nil
}

// scanCodings folds one Transfer-Encoding field value into the running state: chunked
// reports whether the last coding so far is chunked, other whether any coding other than
// chunked was seen. A coding after chunked (including a second chunked) or a coding that
// is not a bare token is an error; empty list elements are ignored (RFC 9110 §5.6.1).
func scanCodings(v []byte, chunked, other *bool) *Error {
	for list := v; list != nil; {
		var item []byte
		item, list = nextListItem(list)
		if len(item) == 0 {
			continue
		}
		if *chunked || !IsToken(item) {
			return errTENotChunked
		}
		if foldEq(item, "chunked") {
			*chunked = true
		} else {
			*other = true
		}
	}
	return nil
}
