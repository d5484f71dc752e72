package http1

import "bytes"

// Bounds on chunked framing. They are fixed because they protect the reader, not policy.
const (
	// MaxChunkLine bounds a chunk-size line including extensions, without its CRLF.
	MaxChunkLine = 4096
	// MaxTrailerBytes bounds the trailer section, counted like Limits.MaxHeaderBytes.
	MaxTrailerBytes = 16 << 10
	// MaxTrailerFields bounds the number of trailer field lines.
	MaxTrailerFields = 64
)

// Body framing modes.
const (
	bodyNone       uint8 = iota // no body, or the body has ended
	bodyLength                  // Content-Length
	bodyChunked                 // chunked transfer coding
	bodyFailed                  // a previous call returned err
	bodyUntilClose              // a response body delimited by the connection's close
)

// States within a chunked body (RFC 9112 §7.1).
const (
	csSize    uint8 = iota // expecting chunk-size [ chunk-ext ] CRLF
	csData                 // inside chunk-data
	csDataEnd              // expecting the CRLF after chunk-data
	csTrailer              // expecting trailer field lines or the final CRLF
)

// BodyReader decodes one request body framed by Content-Length or by the chunked
// transfer coding, including trailers. It never copies body data. A BodyReader belongs to
// one connection and is used by the loop that owns it; Init prepares it for each request.
type BodyReader struct {
	mode    uint8
	chunked bool  // the body is chunked, whatever mode is now
	cs      uint8 // chunked state
	err     error // the error to repeat once mode is bodyFailed
	max     int64 // body limit, 0 for none
	left    int64 // bytes left: of the body (Content-Length) or of the current chunk
	total   int64 // chunked: data bytes so far
	scan    int   // bytes of the current unconsumed line known to hold no LF

	tbytes   int      // trailer section bytes so far
	tbuf     []byte   // trailer names and values, back to back
	tlen     []int32  // lengths of name and value for each trailer, in pairs
	trailers []Header // views into tbuf, built when the body ends
}

// Init prepares b for the body of req. A chunked request is read as chunked, otherwise
// Content-Length bytes are read; a request with neither has no body (RFC 9112 §6.3).
// maxBody limits the body length (0 for no limit): a longer body makes Next return a 413
// *Error. Init keeps the internal buffers of earlier bodies.
func (b *BodyReader) Init(req *Request, maxBody int64) {
	*b = BodyReader{tbuf: b.tbuf[:0], tlen: b.tlen[:0], trailers: b.trailers[:0]}
	if maxBody > 0 {
		b.max = maxBody
	}
	switch {
	case req.Chunked:
		b.mode, b.chunked = bodyChunked, true
	case req.ContentLength > 0:
		b.mode, b.left = bodyLength, req.ContentLength
		if b.max > 0 && b.left > b.max {
			b.fail(errTooLarge)
		}
	}
}

// Remaining returns how many body bytes are still expected for a Content-Length body, or
// -1 for a chunked one.
func (b *BodyReader) Remaining() int64 {
	if b.chunked {
		return -1
	}
	return b.left
}

// Trailers returns the trailer fields of a chunked body, in order. They are copies owned
// by b, valid from the call to Next that reported done until the next Init. A trailer
// field that ForbiddenTrailer reports makes Next fail with a 400 *Error, so none of them
// is ever returned.
func (b *BodyReader) Trailers() []Header { return b.trailers }

func (b *BodyReader) fail(err *Error) {
	b.mode, b.err = bodyFailed, err
}

// Next consumes body bytes from in. It returns data, a view into in holding body bytes
// (never copied, possibly empty), the number of bytes of in consumed, and done once the
// whole body has been consumed. For a chunked body it consumes chunk framing too, so it
// may return empty data with consumed > 0, and it returns at most one chunk's data per
// call. When in ends inside framing, consumed stops before the incomplete part and done
// is false: the caller keeps in[consumed:] and calls again with it followed by more
// bytes. Bytes after the end of the body are not consumed. An error is an *Error whose
// blast radius is the connection; later calls repeat it.
func (b *BodyReader) Next(in []byte) (data []byte, consumed int, done bool, err error) {
	switch b.mode {
	case bodyNone:
		return nil, 0, true, nil
	case bodyFailed:
		return nil, 0, false, b.err
	case bodyUntilClose:
		return in[:len(in):len(in)], len(in), false, nil
	case bodyLength:
		n := len(in)
		if int64(n) > b.left {
			n = int(b.left)
		}
		b.left -= int64(n)
		if b.left == 0 {
			b.mode = bodyNone
		}
		return in[:n:n], n, b.left == 0, nil
	}
	return b.nextChunked(in)
}

// nextChunked runs the chunked state machine over in until it has one segment of data
// and reaches more data, runs out of input, or reaches the end of the body.
func (b *BodyReader) nextChunked(in []byte) (data []byte, consumed int, done bool, err error) {
	pos := 0
	have := false
	for {
		switch b.cs {
		case csSize:
			line, next, e := b.line(in, pos, MaxChunkLine, errChunkLine)
			if e != nil {
				return b.stop(data, pos, e)
			}
			size, perr := parseChunkSize(line)
			if perr != nil {
				return b.stop(data, pos, perr)
			}
			if size > 1<<63-1-b.total {
				return b.stop(data, pos, errChunkSize)
			}
			b.total += size
			if b.max > 0 && b.total > b.max {
				return b.stop(data, pos, errTooLarge)
			}
			pos = next
			b.left = size
			b.cs = csData
			if size == 0 {
				b.cs = csTrailer
			}
		case csData:
			if have || pos == len(in) {
				return data, pos, false, nil
			}
			n := len(in) - pos
			if int64(n) > b.left {
				n = int(b.left)
			}
			data, have = in[pos:pos+n:pos+n], true
			pos += n
			b.left -= int64(n)
			if b.left > 0 {
				return data, pos, false, nil
			}
			b.cs = csDataEnd
		case csDataEnd:
			rest := in[pos:]
			if len(rest) < 2 {
				if len(rest) == 1 && rest[0] != '\r' {
					return b.stop(data, pos, errChunkCRLF)
				}
				return data, pos, false, nil
			}
			if rest[0] != '\r' || rest[1] != '\n' {
				return b.stop(data, pos, errChunkCRLF)
			}
			pos += 2
			b.cs = csSize
		case csTrailer:
			line, next, e := b.line(in, pos, MaxTrailerBytes, errTrailerTooLarge)
			if e != nil {
				return b.stop(data, pos, e)
			}
			pos = next
			if len(line) == 0 {
				b.buildTrailers()
				b.mode = bodyNone
				return data, pos, true, nil
			}
			if e := b.addTrailer(line); e != nil {
				return b.stop(data, pos, e)
			}
		}
	}
}

// stop ends a call early. On ErrNeedMore it returns what has been consumed so far. On an
// error it records it; if this call already has data, the data is returned first and the
// error comes with the next call, so that the bytes delivered before an error do not
// depend on how the input was split.
func (b *BodyReader) stop(data []byte, pos int, err error) ([]byte, int, bool, error) {
	if err == ErrNeedMore {
		return data, pos, false, nil
	}
	b.fail(err.(*Error))
	if len(data) > 0 {
		return data, pos, false, nil
	}
	return nil, 0, false, err
}

// line returns the CRLF-terminated line starting at in[pos], without its CRLF, and the
// offset after it. An incomplete line yields ErrNeedMore (after checking it against max,
// in bytes without the CRLF, failing with tooLong); b.scan remembers how far it was
// searched, so a line arriving a byte at a time is searched once. The trailer byte
// budget is shared by all trailer lines through b.tbytes.
func (b *BodyReader) line(in []byte, pos, max int, tooLong *Error) ([]byte, int, error) {
	rest := in[pos:]
	if b.scan > len(rest) {
		b.scan = 0
	}
	used := 0
	if b.cs == csTrailer {
		used = b.tbytes
	}
	i := bytes.IndexByte(rest[b.scan:], '\n')
	if i < 0 {
		b.scan = len(rest)
		n := len(rest)
		if n > 0 && rest[n-1] == '\r' {
			n--
		}
		if used+n > max {
			return nil, 0, tooLong
		}
		return nil, 0, ErrNeedMore
	}
	end := b.scan + i
	b.scan = 0
	line := rest[:end]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
		if used+len(line) > max {
			return nil, 0, tooLong
		}
		return line, pos + end + 1, nil
	}
	if used+len(line) > max {
		return nil, 0, tooLong
	}
	return nil, 0, errBareLF
}

// parseChunkSize parses chunk-size [ chunk-ext ] (RFC 9112 §7.1.1):
//
//	chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//	chunk-ext-val = token / quoted-string
//
// Extensions are validated and ignored.
func parseChunkSize(line []byte) (int64, *Error) {
	var size int64
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		if size > (1<<63-1-int64(d))/16 {
			return 0, errChunkSize
		}
		size = size*16 + int64(d)
	}
	if i == 0 || i < len(line) && line[i] != ';' && line[i] != ' ' && line[i] != '\t' {
		return 0, errChunkSize
	}
	for i < len(line) {
		j := skipWS(line, i)
		if j == len(line) || line[j] != ';' {
			return 0, errChunkExt
		}
		i = skipWS(line, j+1)
		s := i
		for i < len(line) && tcharTab[line[i]] {
			i++
		}
		if i == s {
			return 0, errChunkExt
		}
		j = skipWS(line, i)
		if j < len(line) && line[j] == '=' {
			i = skipWS(line, j+1)
			var ok bool
			if i, ok = extValue(line, i); !ok {
				return 0, errChunkExt
			}
		}
	}
	return size, nil
}

// extValue scans a chunk-ext-val (token or quoted-string) at line[i] and returns the
// offset after it.
func extValue(line []byte, i int) (int, bool) {
	if i < len(line) && line[i] == '"' {
		for i++; i < len(line); i++ {
			switch c := line[i]; {
			case c == '"':
				return i + 1, true
			case c == '\\':
				i++
				if i == len(line) || !vcharTab[line[i]] {
					return 0, false
				}
			case !vcharTab[c]:
				return 0, false
			}
		}
		return 0, false
	}
	s := i
	for i < len(line) && tcharTab[line[i]] {
		i++
	}
	return i, i > s
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// addTrailer validates one trailer field line and copies it into b.tbuf.
func (b *BodyReader) addTrailer(line []byte) *Error {
	b.tbytes += len(line) + 2
	if b.tbytes > MaxTrailerBytes {
		return errTrailerTooLarge
	}
	if len(b.tlen)/2 >= MaxTrailerFields {
		return errTrailerTooLarge
	}
	name, value, err := parseFieldLine(line)
	if err != nil {
		return err
	}
	if ForbiddenTrailer(name) {
		return errTrailerForbidden
	}
	b.tbuf = append(b.tbuf, name...)
	b.tbuf = append(b.tbuf, value...)
	b.tlen = append(b.tlen, int32(len(name)), int32(len(value)))
	return nil
}

// buildTrailers makes b.trailers point into b.tbuf, now that tbuf no longer grows.
func (b *BodyReader) buildTrailers() {
	off := 0
	for k := 0; k+1 < len(b.tlen); k += 2 {
		n, v := int(b.tlen[k]), int(b.tlen[k+1])
		name := b.tbuf[off : off+n : off+n]
		off += n
		value := b.tbuf[off : off+v : off+v]
		off += v
		b.trailers = append(b.trailers, Header{Name: name, Value: value})
	}
}

// forbiddenTrailers are the fields that RFC 9110 §6.5.1 keeps out of a trailer section
// because they must be known before the content is processed: message framing
// (Content-Length, Transfer-Encoding, Trailer, TE and the connection options), routing
// (Host), request modifiers (Expect, Max-Forwards, Range, conditionals, cache
// directives), authentication and cookies, and the content format (Content-Type,
// Content-Encoding, Content-Range). All lower case.
var forbiddenTrailers = [...]string{
	"content-length", "transfer-encoding", "trailer", "te", "connection", "keep-alive",
	"proxy-connection", "upgrade",
	"host",
	"expect", "max-forwards", "range", "if-match", "if-none-match", "if-modified-since",
	"if-unmodified-since", "if-range", "cache-control", "pragma",
	"authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate",
	"authentication-info", "proxy-authentication-info", "cookie", "set-cookie",
	"content-type", "content-encoding", "content-range",
}

// ForbiddenTrailer reports whether a field named name (any case) must not appear in a
// trailer section (RFC 9110 §6.5.1). BodyReader rejects such request trailers with 400;
// writers of response trailers drop them.
func ForbiddenTrailer(name []byte) bool {
	for _, f := range forbiddenTrailers {
		if foldEq(name, f) {
			return true
		}
	}
	return false
}
