package http1

import "bytes"

// maxLeadingEmptyLines bounds the CRLFs skipped before a request line (RFC 9112 §2.2).
const maxLeadingEmptyLines = 8

// slashPath is the Path of an absolute-form target with an empty path. Callers must not
// modify it.
var slashPath = []byte("/")

// Parser parses request heads. The zero value is ready to use with DefaultLimits. A
// Parser belongs to one connection and is used by the loop that owns that connection.
type Parser struct {
	// Limits bounds request heads and bodies; zero fields take their defaults.
	Limits Limits

	// st is where an incomplete head stopped; st.active is false between heads.
	st headState
	// head: the head last given to ParseHead is a HEAD request's (see Head).
	head bool
}

// headState is the resume point of a head that has not fully arrived. Everything before
// line has been validated; [line, scan) is known to hold no LF.
type headState struct {
	active   bool
	fields   bool  // the request line is done; lines are now field lines
	empties  uint8 // empty lines skipped before the request line
	nfields  int   // field lines seen
	hdrBytes int   // header section bytes seen, as counted for MaxHeaderBytes
	line     int   // offset of the first byte of the current line
	scan     int   // offset up to which the current line has been searched for LF
}

// Reset forgets any partly parsed head, so that the next ParseHead starts afresh.
func (p *Parser) Reset() { p.st, p.head = headState{}, false }

// Head reports whether the head last given to ParseHead, complete or not and valid or
// not, is that of a HEAD request, as far as its request line arrived: the response to
// a head that fails, or times out, must then carry no body either (RFC 9110 §9.3.2).
// It is false after Reset.
func (p *Parser) Head() bool { return p.head }

// startsHead reports whether in, after the empty lines ParseHead skips, starts with
// the method HEAD and its SP.
func startsHead(in []byte) bool {
	for n := 0; n < maxLeadingEmptyLines && len(in) >= 2 && in[0] == '\r' && in[1] == '\n'; n++ {
		in = in[2:]
	}
	return len(in) >= 5 && string(in[:5]) == "HEAD "
}

// ParseHead parses the request head at the start of in into req.
//
// When the head is complete it returns the number of bytes it occupies (request line,
// field lines, the final CRLF and any empty lines skipped before it) and nil; req then
// holds views into in. When in ends before the head does it returns 0 and ErrNeedMore;
// the caller calls again with the same bytes followed by more (the bytes may have moved
// to another buffer). The parser remembers how far it has validated and searched, so a
// head arriving one byte at a time costs time linear in its length. When the head is
// invalid or over a limit it returns 0 and an *Error; limits are enforced on incomplete
// input too, so an endless request line is refused as soon as it passes the limit.
//
// If the caller abandons an incomplete head (for example to close the connection and
// reuse the Parser), it calls Reset first.
func (p *Parser) ParseHead(in []byte, req *Request) (int, error) {
	p.head = startsHead(in)
	lim := p.Limits.withDefaults()
	if p.st.active && p.st.scan <= len(in) {
		// Resume: validate only the new lines, without filling req. The head is then
		// parsed once more from the start to fill req with views into this in.
		st := p.st
		_, err := p.run(in, req, &lim, &st, false)
		if err == ErrNeedMore {
			p.st = st
			return 0, err
		}
		p.st = headState{}
		if err != nil {
			return 0, err
		}
	}
	p.st = headState{}
	req.Reset()
	var st headState
	n, err := p.run(in, req, &lim, &st, true)
	if err == ErrNeedMore {
		st.active = true
		p.st = st
		return 0, err
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// run parses lines of in from st onwards. With fill it records the request line and the
// field lines in req and applies Request.finish at the end of the head; without fill it
// only validates. On ErrNeedMore st says where to resume.
//
// Both modes make the same checks in the same order, and the checks made on an
// incomplete line (limits only) are implied by the checks on the complete line, so the
// outcome does not depend on how the input was split.
func (p *Parser) run(in []byte, req *Request, lim *Limits, st *headState, fill bool) (int, error) {
	for {
		i := bytes.IndexByte(in[st.scan:], '\n')
		if i < 0 {
			st.scan = len(in)
			return 0, partialLimits(in[st.line:], st, lim)
		}
		end := st.scan + i
		content := in[st.line:end]
		crlf := len(content) > 0 && content[len(content)-1] == '\r'
		if crlf {
			content = content[:len(content)-1]
		}
		next := end + 1

		if !st.fields {
			if len(content) == 0 {
				if !crlf {
					return 0, errBareLF
				}
				st.empties++
				if st.empties > maxLeadingEmptyLines {
					return 0, errLeadingLines
				}
				st.line, st.scan = next, next
				continue
			}
			if len(content) > lim.MaxRequestLine {
				return 0, errURITooLong
			}
			if !crlf {
				return 0, errBareLF
			}
			if err := parseRequestLine(content, req); err != nil {
				return 0, err
			}
			st.fields = true
			st.line, st.scan = next, next
			continue
		}

		if len(content) == 0 {
			if !crlf {
				return 0, errBareLF
			}
			if fill {
				if err := req.finish(lim); err != nil {
					return 0, err
				}
			}
			return next, nil
		}
		st.hdrBytes += len(content) + 2
		if st.hdrBytes > lim.MaxHeaderBytes {
			return 0, errHeaderTooLarge
		}
		st.nfields++
		if st.nfields > lim.MaxHeaderFields {
			return 0, errTooManyFields
		}
		if !crlf {
			return 0, errBareLF
		}
		name, value, err := parseFieldLine(content)
		if err != nil {
			return 0, err
		}
		if fill {
			req.Headers = append(req.Headers, Header{Name: name, Value: value})
		}
		st.line, st.scan = next, next
	}
}

// partialLimits checks the limits that an incomplete line already exceeds, and returns
// ErrNeedMore when it exceeds none. A trailing CR is not counted, since it may belong to
// the CRLF; what is counted is therefore never more than the complete line will count.
func partialLimits(partial []byte, st *headState, lim *Limits) error {
	n := len(partial)
	if n > 0 && partial[n-1] == '\r' {
		n--
	}
	if !st.fields {
		if n > lim.MaxRequestLine {
			return errURITooLong
		}
	} else if st.hdrBytes+n > lim.MaxHeaderBytes {
		return errHeaderTooLarge
	}
	return ErrNeedMore
}

// parseRequestLine parses method SP request-target SP HTTP-version (RFC 9112 §3) into req.
func parseRequestLine(line []byte, req *Request) *Error {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return errRequestLine
	}
	method := line[:sp]
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return errRequestLine
	}
	target, version := rest[:sp], rest[sp+1:]
	if !IsToken(method) {
		return errMethod
	}
	if !validTarget(target) {
		return errTarget
	}
	if len(version) != 8 || string(version[:5]) != "HTTP/" || version[6] != '.' ||
		!isDigit(version[5]) || !isDigit(version[7]) {
		return errVersion
	}
	if version[5] != '1' {
		return errVersionSupport
	}
	req.Minor = 1
	if version[7] == '0' {
		req.Minor = 0
	}
	req.Method, req.Target = method, target
	return splitTarget(req)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// splitTarget classifies req.Target (RFC 9112 §3.2) and sets Form, Path, Query and, for
// absolute-form and authority-form, Host.
func splitTarget(req *Request) *Error {
	t := req.Target
	connect := string(req.Method) == "CONNECT"
	switch {
	case connect:
		// authority-form = uri-host ":" port, and CONNECT allows nothing else.
		if !hasPort(t) || !ValidHost(t) {
			return errTarget
		}
		req.Form, req.Host = FormAuthority, t
		return nil
	case t[0] == '/':
		req.Form = FormOrigin
		splitQuery(req, t)
		return req.normalize()
	case len(t) == 1 && t[0] == '*':
		if string(req.Method) != "OPTIONS" {
			return errTarget
		}
		req.Form, req.Path, req.NormPath = FormAsterisk, t, t
		return nil
	}
	// absolute-form: only the http and https schemes are served (RFC 9110 §4.2).
	var rest []byte
	switch {
	case len(t) > 7 && foldEq(t[:7], "http://"):
		rest = t[7:]
	case len(t) > 8 && foldEq(t[:8], "https://"):
		rest = t[8:]
	default:
		return errTarget
	}
	end := len(rest)
	for i, c := range rest {
		if c == '/' || c == '?' {
			end = i
			break
		}
	}
	authority := rest[:end]
	// userinfo is refused (RFC 9110 §4.2.4); an empty host is invalid for http(s).
	if len(authority) == 0 || authority[0] == ':' || bytes.IndexByte(authority, '@') >= 0 || !ValidHost(authority) {
		return errTarget
	}
	req.Form, req.Host = FormAbsolute, authority
	splitQuery(req, rest[end:])
	if len(req.Path) == 0 {
		req.Path = slashPath
	}
	return req.normalize()
}

// hasPort reports whether the authority t has a non-empty host followed by ":" and a
// non-empty port. ValidHost checks the characters.
func hasPort(t []byte) bool {
	colon := bytes.IndexByte(t, ':')
	if t[0] == '[' {
		end := bytes.IndexByte(t, ']')
		if end < 0 || end+1 >= len(t) || t[end+1] != ':' {
			return false
		}
		colon = end + 1
	}
	return colon > 0 && colon < len(t)-1
}

// splitQuery sets req.Path and req.Query from path-abempty [ "?" query ].
func splitQuery(req *Request, pq []byte) {
	if q := bytes.IndexByte(pq, '?'); q >= 0 {
		req.Path, req.Query = pq[:q], pq[q+1:]
		return
	}
	req.Path = pq
}

// parseFieldLine splits field-name ":" OWS field-value OWS (RFC 9112 §5) and validates
// both parts. It is shared by request heads and chunked trailers.
func parseFieldLine(line []byte) (name, value []byte, err *Error) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, errObsFold
	}
	i := 0
	for i < len(line) && tcharTab[line[i]] {
		i++
	}
	switch {
	case i == len(line):
		return nil, nil, errNoColon
	case line[i] == ':':
		if i == 0 {
			return nil, nil, errFieldName
		}
	case line[i] == ' ' || line[i] == '\t':
		return nil, nil, errSpaceName
	default:
		return nil, nil, errFieldName
	}
	name = line[:i]
	v := line[i+1:]
	if !validValue(v) {
		return nil, nil, errFieldValue
	}
	return name, TrimOWS(v), nil
}
