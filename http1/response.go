package http1

import "bytes"

// Response is a parsed response head, as a client (the proxy) receives it from an origin.
// Its byte slices are views into the input given to ResponseParser.Parse and are valid
// only while that input is. A Response is owned by the loop that parses into it.
type Response struct {
	// Minor is the minor version: 0 for HTTP/1.0, 1 for HTTP/1.1 and later HTTP/1.x.
	Minor int
	// Status is the three-digit status code, 100 to 599.
	Status int
	// Reason is the reason phrase, possibly empty.
	Reason []byte
	// Headers holds the field lines in order, duplicates included. Its backing array is
	// kept across Reset.
	Headers []Header
	// ContentLength is the Content-Length value, or -1 when absent (always -1 if Chunked).
	ContentLength int64
	// Chunked is true when Transfer-Encoding is exactly "chunked".
	Chunked bool
	// KeepAlive is true when the connection may carry another request after this
	// response: HTTP/1.1 unless Connection has "close", HTTP/1.0 only with "keep-alive".
	// Whether the body is delimited by the close is decided by BodyReader.InitResponse.
	KeepAlive bool
}

// Reset clears r for the next response, keeping the Headers backing array.
func (r *Response) Reset() {
	h := r.Headers[:0]
	*r = Response{Headers: h, ContentLength: -1}
}

// Header returns the value of the first field named name (any case) and whether there
// was one.
func (r *Response) Header(name string) ([]byte, bool) {
	for i := range r.Headers {
		if EqualFold(r.Headers[i].Name, name) {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// HasToken reports whether any field named name holds token in its list (see
// Request.HasToken).
func (r *Response) HasToken(name, token string) bool {
	for i := range r.Headers {
		if EqualFold(r.Headers[i].Name, name) && ListHasToken(r.Headers[i].Value, token) {
			return true
		}
	}
	return false
}

// Informational reports a 1xx interim response, which is followed by another head.
func (r *Response) Informational() bool { return r.Status < 200 }

// Errors of the response parser. A gateway answers 502 for every one of them and never
// relays the response (RFC 9112 §6.3 and §11.2). Their blast radius is the upstream
// connection, which must be closed.
var (
	errRespStatusLine = newErr(502, "malformed status line in upstream response")
	errRespVersion    = newErr(502, "unsupported HTTP version in upstream response")
	errRespStatus     = newErr(502, "invalid status code in upstream response")
	errRespReason     = newErr(502, "invalid reason phrase in upstream response")
	errRespBareLF     = newErr(502, "upstream response line ends in bare LF")
	errRespTooLarge   = newErr(502, "upstream response head too large")
	errRespTooMany    = newErr(502, "too many fields in upstream response")
	errRespCL         = newErr(502, "invalid or conflicting Content-Length in upstream response")
	errRespCLAndTE    = newErr(502, "both Content-Length and Transfer-Encoding in upstream response")
	errRespTE         = newErr(502, "upstream response Transfer-Encoding other than chunked")
	errRespField      = newErr(502, "malformed field line in upstream response")
)

// ResponseParser parses response heads. The zero value is ready to use with
// DefaultLimits (MaxRequestLine bounds the status line). A ResponseParser belongs to one
// upstream connection and is used by the loop that owns it.
type ResponseParser struct {
	// Limits bounds response heads; MaxBodyBytes is not used.
	Limits Limits

	line     int // offset of the first byte of the current line
	scan     int // offset up to which the current line has been searched for LF
	nfields  int
	hdrBytes int
	fields   bool // the status line is done
}

// Reset forgets a partly parsed head.
func (p *ResponseParser) Reset() { *p = ResponseParser{Limits: p.Limits} }

// Parse parses the response head at the start of in into r. It returns the head's length
// and nil when the head is complete (r then holds views into in); 0 and ErrNeedMore when
// in ends first (the caller calls again with the same bytes followed by more; the search
// resumes where it stopped, so a head arriving a byte at a time costs linear time); or 0
// and an *Error with Status 502 when the head is invalid or over a limit (enforced on
// incomplete input too). Unlike the request parser it skips no leading empty lines: a
// byte before a status line is an error.
func (p *ResponseParser) Parse(in []byte, r *Response) (int, error) {
	lim := p.Limits.withDefaults()
	if p.scan > len(in) {
		p.Reset()
	}
	for {
		i := bytes.IndexByte(in[p.scan:], '\n')
		if i < 0 {
			p.scan = len(in)
			n := len(in) - p.line
			if n > 0 && in[len(in)-1] == '\r' {
				n--
			}
			if !p.fields && n > lim.MaxRequestLine || p.fields && p.hdrBytes+n > lim.MaxHeaderBytes {
				p.Reset()
				return 0, errRespTooLarge
			}
			return 0, ErrNeedMore
		}
		end := p.scan + i
		content := in[p.line:end]
		crlf := len(content) > 0 && content[len(content)-1] == '\r'
		if crlf {
			content = content[:len(content)-1]
		}
		next := end + 1
		// Limits are checked before the line ending, as on incomplete input, so that
		// the outcome does not depend on how the input was split.
		var err error
		switch {
		case !p.fields:
			if len(content) > lim.MaxRequestLine {
				err = errRespTooLarge
			}
			p.fields = true
		case len(content) == 0:
			if !crlf {
				err = errRespBareLF
				break
			}
			p.Reset()
			return next, parseResponseHead(in[:next], r)
		default:
			p.hdrBytes += len(content) + 2
			p.nfields++
			if p.hdrBytes > lim.MaxHeaderBytes {
				err = errRespTooLarge
			} else if p.nfields > lim.MaxHeaderFields {
				err = errRespTooMany
			}
		}
		if err == nil && !crlf {
			err = errRespBareLF
		}
		if err != nil {
			p.Reset()
			return 0, err
		}
		p.line, p.scan = next, next
	}
}

// parseResponseHead fills r from a complete head whose lines all end in CRLF.
func parseResponseHead(head []byte, r *Response) error {
	r.Reset()
	eol := bytes.IndexByte(head, '\n')
	if err := parseStatusLine(head[:eol-1], r); err != nil {
		return err
	}
	rest := head[eol+1:]
	for {
		eol = bytes.IndexByte(rest, '\n')
		line := rest[:eol-1]
		rest = rest[eol+1:]
		if len(line) == 0 {
			break
		}
		name, value, err := parseFieldLine(line)
		if err != nil {
			return errRespField
		}
		r.Headers = append(r.Headers, Header{Name: name, Value: value})
	}
	return r.finish()
}

// parseStatusLine parses HTTP-version SP 3DIGIT SP [ reason-phrase ] (RFC 9112 §4). A
// missing SP after the code is accepted, as most clients do.
func parseStatusLine(line []byte, r *Response) error {
	if len(line) < 12 || string(line[:5]) != "HTTP/" || line[6] != '.' || line[8] != ' ' ||
		!isDigit(line[5]) || !isDigit(line[7]) {
		return errRespStatusLine
	}
	if line[5] != '1' {
		return errRespVersion
	}
	r.Minor = 1
	if line[7] == '0' {
		r.Minor = 0
	}
	code := line[9:12]
	if !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) {
		return errRespStatus
	}
	r.Status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if r.Status < 100 || r.Status > 599 {
		return errRespStatus
	}
	reason := line[12:]
	if len(reason) > 0 {
		if reason[0] != ' ' {
			return errRespStatusLine
		}
		reason = reason[1:]
	}
	if !validValue(reason) {
		return errRespReason
	}
	r.Reason = reason
	return nil
}

// finish applies the framing rules of RFC 9112 §6.3 to the fields, strictly: several
// differing Content-Length values, Content-Length with Transfer-Encoding, or a transfer
// coding other than a lone chunked are errors, so that a gateway never relays a
// response whose end it and the origin might see differently.
func (r *Response) finish() error {
	cl := int64(-1)
	te, teChunked, teOther := false, false, false
	closeTok, keepTok := false, false
	for i := range r.Headers {
		name, v := r.Headers[i].Name, r.Headers[i].Value
		switch {
		case foldEq(name, "content-length"):
			n, ok := ParseDecimal(v)
			if !ok || cl >= 0 && n != cl {
				return errRespCL
			}
			cl = n
		case foldEq(name, "transfer-encoding"):
			te = true
			if scanCodings(v, &teChunked, &teOther) != nil {
				return errRespTE
			}
		case foldEq(name, "connection"):
			closeTok = closeTok || ListHasToken(v, "close")
			keepTok = keepTok || ListHasToken(v, "keep-alive")
		}
	}
	if te {
		switch {
		case cl >= 0:
			return errRespCLAndTE
		case !teChunked || teOther || r.Minor == 0:
			return errRespTE
		}
		r.Chunked = true
	}
	r.ContentLength = cl
	r.KeepAlive = !closeTok && (r.Minor == 1 || keepTok)
	return nil
}

// ResponseHasBody reports whether a response with this status to a request with this
// method carries a body (RFC 9110 §6.4.1, §9.3.2): never for HEAD, 1xx, 204 or 304.
func ResponseHasBody(status int, head bool) bool {
	return !head && status >= 200 && status != 204 && status != 304
}

// InitResponse prepares b for the body of resp, the answer to a request that was HEAD
// when head is true. With no body (HEAD, 1xx, 204, 304) Next reports done at once;
// chunked and Content-Length bodies are read as for requests; a response with neither
// is delimited by the close of the connection (UntilClose reports true, Next returns all
// its input as data and never done: the caller ends the body at EOF). Trailers named by
// ForbiddenTrailer make Next fail. Bodies are not limited.
func (b *BodyReader) InitResponse(resp *Response, head bool) {
	*b = BodyReader{tbuf: b.tbuf[:0], tlen: b.tlen[:0], trailers: b.trailers[:0]}
	switch {
	case !ResponseHasBody(resp.Status, head):
	case resp.Chunked:
		b.mode, b.chunked = bodyChunked, true
	case resp.ContentLength > 0:
		b.mode, b.left = bodyLength, resp.ContentLength
	case resp.ContentLength < 0:
		b.mode = bodyUntilClose
	}
}

// UntilClose reports whether the body ends only when the connection closes.
func (b *BodyReader) UntilClose() bool { return b.mode == bodyUntilClose }

// AppendRequestLine appends "<method> <target> HTTP/1.1\r\n", the start of a request to an
// upstream. method must be a token and target a valid request-target; both come from a
// parsed request or from configuration validated as such.
func AppendRequestLine(dst, method, target []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
	return append(dst, " HTTP/1.1\r\n"...)
}
