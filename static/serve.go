package static

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/server"
)

const textPlain = "text/plain; charset=utf-8"

// serve answers one request. It acts on the request's normalized path (the one
// routing matched); a request without one (an Exchange that does not normalize) has
// its raw path normalized here by the same function. The query is the raw query
// without '?'.
func (h *Handler) serve(x server.Exchange) {
	method, query := x.Method(), x.Query()
	norm := x.NormPath()
	if norm == nil {
		n, err := http1.NormalizePath(nil, x.Path())
		if err != nil {
			x.Error(err.Status, "")
			return
		}
		norm = n
	}
	if string(method) != "GET" && string(method) != "HEAD" {
		x.Header().Set("Allow", "GET, HEAD")
		x.Respond(405, textPlain, []byte("Method Not Allowed\n"))
		return
	}
	now := x.Now()
	p, status := h.requestPath(norm)
	if status != 0 {
		x.Error(status, "")
		return
	}
	if p.dotfile {
		switch h.dotfiles {
		case dotDeny:
			x.Error(403, "")
			return
		case dotIgnore:
			h.serveMissing(x, errNotFound, now)
			return
		}
	}
	if p.dir {
		h.serveDirectory(x, p.rel, now)
		return
	}
	e, err := h.cache.get(p.rel, now)
	switch err {
	case nil:
		h.serveEntry(x, e, now)
	case errIsDir:
		h.redirectToDir(x, p.rel, query)
	default:
		h.serveMissing(x, err, now)
	}
}

// requestPath removes the mount prefix (normalized as well) from the normalized path
// and splits the rest. The prefix itself ("/assets" for prefix "/assets") names the
// root as a directory without its trailing slash, which is then redirected like any
// other directory.
func (h *Handler) requestPath(norm []byte) (cleanedPath, int) {
	if h.prefix == "" {
		return splitPath(norm)
	}
	if !bytes.HasPrefix(norm, []byte(h.prefix)) {
		return cleanedPath{}, 404
	}
	rest := norm[len(h.prefix):]
	if !strings.HasSuffix(h.prefix, "/") {
		if len(rest) == 0 {
			return cleanedPath{}, 0
		}
		// The prefix ended inside a segment, so the remainder's first segment was
		// part of a longer name that normalization rightly left alone ("/files.." is
		// the name "files.."). Alone it would be a dot segment: "/files../x" would
		// name root/../x. It names nothing below the root. Later segments are whole
		// segments of the normalized path and cannot be dot segments.
		if first, _, _ := bytes.Cut(rest, []byte("/")); string(first) == "." || string(first) == ".." {
			return cleanedPath{}, 404
		}
	}
	return splitPath(rest)
}

// urlPath returns the URL path of a cleaned path under the mount prefix, with a
// trailing slash when dir is set.
func (h *Handler) urlPath(rel string, dir bool) string {
	u := h.urlBase + "/" + escapePath(rel)
	if dir && rel != "" {
		u += "/"
	}
	return u
}

// serveDirectory answers a path ending in '/': the first index file that exists, else
// a listing when browsing is on, else the fallback or 404.
func (h *Handler) serveDirectory(x server.Exchange, rel string, now time.Time) {
	for _, name := range h.index {
		key := name
		if rel != "" {
			key = rel + "/" + name
		}
		e, err := h.cache.get(key, now)
		switch err {
		case nil:
			h.serveEntry(x, e, now)
			return
		case errNotFound, errIsDir:
			continue
		}
		h.serveError(x, err)
		return
	}
	if h.browse {
		h.serveListing(x, rel, now)
		return
	}
	h.serveMissing(x, errNotFound, now)
}

// redirectToDir answers 301 to the directory form of rel, keeping the query. The
// Location is built from the cleaned path, never echoed, so "//host" cannot become an
// open redirect. The query is kept as sent except for the bytes a URI may not hold,
// which are percent-encoded (see appendQuery), so the Location is always a valid
// URI-reference.
func (h *Handler) redirectToDir(x server.Exchange, rel string, query []byte) {
	loc := h.urlPath(rel, true)
	if len(query) > 0 && http1.ValidFieldValue(query) {
		loc += "?" + string(appendQuery(nil, query))
	}
	x.Header().Set("Location", loc)
	x.Respond(301, textPlain, []byte("Moved Permanently\n"))
}

// appendQuery appends q with every byte a URI query may not hold (RFC 3986 §3.4)
// percent-encoded: bytes from 0x80 up (obs-text in a request-target), controls, space,
// '"', '<', '>', '\', '^', '`', '{', '|', '}', and a '%' that does not start an
// escape. '[' and ']' are kept, as browsers send them. A server decoding the result
// gets back the query as sent.
func appendQuery(dst, q []byte) []byte {
	const hexDigits = "0123456789ABCDEF"
	for i, c := range q {
		switch {
		case c == '%' && i+2 < len(q) && isHex(q[i+1]) && isHex(q[i+2]):
			dst = append(dst, c)
		case c <= ' ' || c >= 0x7f || c == '%' || c == '"' || c == '<' || c == '>' || c == '\\' ||
			c == '^' || c == '`' || c == '{' || c == '|' || c == '}':
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// serveMissing answers a lookup that failed with err: the fallback file when err is
// errNotFound and a fallback is configured, else the error.
func (h *Handler) serveMissing(x server.Exchange, err error, now time.Time) {
	if err == errNotFound && h.hasFallback {
		if e, ferr := h.cache.get(h.fallback, now); ferr == nil {
			h.serveEntry(x, e, now)
			return
		}
	}
	h.serveError(x, err)
}

// serveError answers a failed lookup: 404, 403, or 500 for an unexpected error (an
// open that failed with EIO or EMFILE, a directory that could not be read), which is
// also logged with the request path and the error, the system call's name included,
// since the 500 itself tells the operator nothing.
func (h *Handler) serveError(x server.Exchange, err error) {
	switch err {
	case errNotFound, errIsDir:
		x.Error(404, "")
	case errForbidden:
		x.Error(403, "")
	default:
		path := x.NormPath()
		if path == nil {
			path = x.Path()
		}
		h.log.Error("static: cannot serve file", "path", string(path), "err", err)
		x.Error(500, "")
	}
}

// serveEntry answers with the file of e (or its best precompressed variant) and drops
// the caller's reference on e.
func (h *Handler) serveEntry(x server.Exchange, e *entry, now time.Time) {
	e = h.pickVariant(x, e, now)
	defer e.release()
	nowSec := now.Unix()
	modSec := lastModified(e.modSec, nowSec)
	switch evalPreconditions(requestConditions(x), e.etag, modSec, nowSec) {
	case condFailed:
		x.Error(412, "")
		return
	case condNotModified:
		appendMeta(x, e, nowSec)
		x.WriteHeader(304)
		x.End()
		return
	}
	head := x.IsHead()
	// An empty representation ignores Range (RFC 9110 §14.2 allows it): no range of
	// it can carry a byte, and clients that put "bytes=0-" on every request (media
	// players, download tools) expect the empty 200 nginx and Go's net/http send,
	// not 416. HEAD takes Range as GET does and gets the head GET would (RFC 9110
	// §9.3.2), 206 or 416 included, as from nginx and Go's net/http: tools probe
	// with a HEAD and a Range whether a download can be resumed.
	if rv := reqSingle(x, "Range"); rv != nil && e.size > 0 && h.ifRange(x, e, modSec) {
		var buf [MaxRanges]ByteRange
		rs, err := appendRanges(buf[:0], rv, e.size)
		switch {
		case err == nil && len(rs) == 1:
			h.sendSingleRange(x, e, rs[0], nowSec)
			return
		case err == nil && !e.encoded:
			h.sendMultipart(x, e, rs, nowSec)
			return
		case err == nil:
			// Several ranges of a precompressed variant: its Content-Encoding would
			// stand over a multipart body that is not in that coding, and decoding
			// clients would fail on it. The whole variant is sent (RFC 9110 §14.2
			// lets a server ignore Range), as nginx's gzip_static does for any Range.
		case err != ErrRangeInvalid:
			x.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(e.size, 10))
			x.Respond(416, textPlain, []byte("Range Not Satisfiable\n"))
			return
		}
	}
	x.Header().AppendRaw(e.hdrType)
	appendMeta(x, e, nowSec)
	x.Header().AppendRaw(e.hdrBody)
	x.SetContentLength(e.size)
	x.WriteHeader(200)
	if !head {
		sendBody(x, e, 0, e.size)
	}
	x.End()
}

// pickVariant returns the precompressed variant of e the request accepts best, moving
// the caller's reference to it, or e itself.
func (h *Handler) pickVariant(x server.Exchange, e *entry, now time.Time) *entry {
	if e.siblings == 0 {
		return e
	}
	ae := reqList(x, "Accept-Encoding")
	if ae == nil {
		return e
	}
	enc := negotiateEncoding(ae, e.siblings)
	for i := range encodings {
		if encodings[i].enc != enc {
			continue
		}
		if v, err := h.cache.get(e.variants[i], now); err == nil {
			e.release()
			return v
		}
	}
	return e
}

// ifRange reports whether a Range field may be honoured: there is no If-Range, or it
// matches e's entity-tag or modSec, the modification time the response reports.
func (h *Handler) ifRange(x server.Exchange, e *entry, modSec int64) bool {
	v := reqSingle(x, "If-Range")
	return v == nil || ifRangeMatches(v, e.etag, modSec)
}

// appendMeta adds e's Last-Modified, ETag, Cache-Control and Vary lines. A file whose
// mtime lies in the future at nowSec reports nowSec as its Last-Modified (the
// response's Date), per lastModified; the pre-rendered lines serve every other file.
func appendMeta(x server.Exchange, e *entry, nowSec int64) {
	if e.modSec <= nowSec {
		x.Header().AppendRaw(e.hdrMeta)
		return
	}
	x.Header().Set("Last-Modified", formatHTTPDate(nowSec))
	x.Header().AppendRaw(e.hdrMeta[e.lmLen:])
}

func requestConditions(x server.Exchange) condHeaders {
	return condHeaders{
		ifMatch:           reqList(x, "If-Match"),
		ifNoneMatch:       reqList(x, "If-None-Match"),
		ifModifiedSince:   reqSingle(x, "If-Modified-Since"),
		ifUnmodifiedSince: reqSingle(x, "If-Unmodified-Since"),
	}
}

// reqList returns the value of a list-based request field (RFC 9110 §5.6.1) as
// reqField does, with all of its field lines joined by ", ": a sender may split one
// list over several lines, which mean the same as the lines combined in order (RFC
// 9110 §5.3). A field on one line, the common case, is returned without copying.
func reqList(x server.Exchange, name string) []byte {
	v := reqField(x, name)
	if v == nil {
		return nil
	}
	var joined []byte
	lines := 0
	x.EachReqHeader(func(k, val []byte) {
		if !http1.EqualFold(k, name) {
			return
		}
		if lines++; lines == 1 {
			return // v, the first line
		}
		if joined == nil {
			joined = append(joined, v...)
		}
		joined = append(append(joined, ", "...), val...)
	})
	if lines < 2 {
		return v
	}
	return joined
}

// reqSingle returns the value of a request field that holds one value, not a list
// (Range, If-Range, If-Modified-Since, If-Unmodified-Since), as reqField does, except
// that a field sent on several lines that do not all carry the same value is invalid
// and reported as present but empty, which no caller accepts: the Range is ignored,
// the If-Range does not match (so the whole representation is sent) and the date is
// ignored. Taking the first line instead would act on a value that a cache or proxy
// in front, reading the last one, never saw: a 206 spliced into a copy the client's
// If-Range meant to replace, or a 304 for a copy it never had.
func reqSingle(x server.Exchange, name string) []byte {
	v := reqField(x, name)
	if v == nil {
		return nil
	}
	same := true
	x.EachReqHeader(func(k, val []byte) {
		if same && http1.EqualFold(k, name) && !bytes.Equal(http1.TrimOWS(val), http1.TrimOWS(v)) {
			same = false
		}
	})
	if !same {
		return []byte{}
	}
	return v
}

// reqField returns a request field's value, nil when absent and non-nil when present
// but empty.
func reqField(x server.Exchange, name string) []byte {
	v, ok := x.ReqHeader(name)
	if !ok {
		return nil
	}
	if v == nil {
		return []byte{}
	}
	return v
}

func (h *Handler) sendSingleRange(x server.Exchange, e *entry, r ByteRange, nowSec int64) {
	x.Header().AppendRaw(e.hdrType)
	appendMeta(x, e, nowSec)
	x.Header().AppendRaw(e.hdrBody)
	x.Header().Set("Content-Range", string(appendContentRange(nil, r, e.size)))
	x.SetContentLength(r.Length)
	x.WriteHeader(206)
	if !x.IsHead() {
		sendBody(x, e, r.Start, r.Length)
	}
	x.End()
}

// sendMultipart answers 206 with a multipart/byteranges body (RFC 9110 §14.6): each
// part is "--B", its Content-Type and Content-Range, a blank line and the bytes, then
// CRLF; the body ends with "--B--" CRLF. Part headers go out with Write and the bytes
// with SendFile (or Write for in-memory files), interleaved. A HEAD gets the head
// alone, with the Content-Length of that body.
func (h *Handler) sendMultipart(x server.Exchange, e *entry, rs []ByteRange, nowSec int64) {
	boundary := h.boundaryPrefix + strconv.FormatUint(h.boundarySeq.Add(1), 16)
	var heads []byte
	var ends [MaxRanges]int
	for i, r := range rs {
		if i > 0 {
			heads = append(heads, "\r\n"...)
		}
		heads = append(heads, "--"...)
		heads = append(heads, boundary...)
		heads = append(heads, "\r\nContent-Type: "...)
		heads = append(heads, e.ctype...)
		heads = append(heads, "\r\nContent-Range: "...)
		heads = appendContentRange(heads, r, e.size)
		heads = append(heads, "\r\n\r\n"...)
		ends[i] = len(heads)
	}
	tail := "\r\n--" + boundary + "--\r\n"
	var n int64
	for _, r := range rs {
		n += r.Length
	}
	x.Header().Set("Content-Type", "multipart/byteranges; boundary="+boundary)
	appendMeta(x, e, nowSec)
	x.Header().AppendRaw(e.hdrBody)
	x.SetContentLength(int64(len(heads)+len(tail)) + n)
	x.WriteHeader(206)
	if x.IsHead() {
		x.End()
		return
	}
	start := 0
	for i, r := range rs {
		x.Write(heads[start:ends[i]])
		start = ends[i]
		sendBody(x, e, r.Start, r.Length)
	}
	x.Write([]byte(tail))
	x.End()
}

// appendContentRange appends "bytes first-last/size".
func appendContentRange(b []byte, r ByteRange, size int64) []byte {
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, r.Start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.Start+r.Length-1, 10)
	b = append(b, '/')
	return strconv.AppendInt(b, size, 10)
}

// sendBody queues n bytes of e from off: copied from memory for small files, else with
// sendfile holding a reference on e until the kernel has taken the bytes. If the file
// shrinks meanwhile, the server's sendfile sees a short read and closes the connection,
// since the promised Content-Length can no longer be met.
func sendBody(x server.Exchange, e *entry, off, n int64) {
	if n == 0 {
		return
	}
	if e.data != nil {
		x.Write(e.data[off : off+n])
		return
	}
	x.SendFile(e.fd, off, n, e.acquire())
}
