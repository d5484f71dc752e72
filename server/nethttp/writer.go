package nethttp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/gale-server/gale/server"
)

// errConnGone is reported to writers after the client went away.
var errConnGone = errors.New("nethttp: client connection closed")

// errResponseEnded is reported to writers after the server ended the response
// itself (a timeout, a failed request body).
var errResponseEnded = errors.New("nethttp: the server has already ended the response")

// responseWriter is the http.ResponseWriter of the adapter. Every field is owned by
// the handler goroutine; what reaches the loop goes through x.pipe.send.
type responseWriter struct {
	x             *exchange
	req           *http.Request
	header        http.Header
	snapshot      fieldList // header as of WriteHeader
	status        int
	wroteHeader   bool
	headPosted    bool
	contentLength int64
	written       int64
	isHead        bool
	noSniff       bool // the head as of WriteHeader rules out sniffing Content-Type
	buf           []byte
	sniff         []byte // the first body bytes of a HEAD response, which are not sent
	hijacked      bool
	closeNotify   chan bool // made by the first CloseNotify
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
	_ http.Hijacker       = (*responseWriter)(nil)
	_ io.ReaderFrom       = (*responseWriter)(nil)
)

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	w.x.progress()
	if code >= 100 && code <= 199 && code != 101 {
		h := w.header.Clone()
		c := w.x.ex
		w.x.pipe.send(0, func() {
			var hh server.Header
			for k, vs := range h {
				for _, v := range vs {
					hh.Add(k, v)
				}
			}
			c.WriteInformational(code, &hh)
		})
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	w.wroteHeader = true
	w.status = code
	w.snapshot.take(w.header)
	// As net/http: a Content-Type key, even without a value (the way to ask for no
	// Content-Type at all), or a Content-Encoding rules out sniffing, and so does a
	// Transfer-Encoding on HTTP/1 (net/http's HTTP/2 server, which has no transfer
	// codings, sniffs past one).
	_, haveType := w.header["Content-Type"]
	w.noSniff = haveType || w.header.Get("Content-Encoding") != "" || w.x.c != nil && w.header.Get("Transfer-Encoding") != ""
	if cl := w.snapshot.get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64); err == nil && n >= 0 {
			w.contentLength = n
		}
	}
}

// bodyAllowed reports whether the status permits a body (RFC 9110 §6.4.1).
func bodyAllowed(status int) bool {
	return status >= 200 && status != 204 && status != 304
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(200)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.x.progress()
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		return 0, http.ErrContentLength
	}
	if err := w.x.pipe.outputErr(); err != nil {
		return 0, err
	}
	w.written += int64(len(p))
	if w.isHead {
		// Not sent, but sniffed: a HEAD response has the Content-Type of the GET.
		if n := sniffLen - len(w.sniff); n > 0 && !w.headPosted {
			w.sniff = append(w.sniff, p[:min(n, len(p))]...)
		}
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= responseBufSize {
		if err := w.flushBuf(false); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush sends the head and everything buffered (FlushError, without the error).
func (w *responseWriter) Flush() { w.FlushError() }

// switching reports an HTTP/1 response whose head, not yet sent, is a 101: Hijack
// sends it (net/http's way to switch protocols), or finish does.
func (w *responseWriter) switching() bool {
	return w.status == http.StatusSwitchingProtocols && w.x.c != nil && !w.headPosted
}

// flushBuf hands the buffered body (and the head, the first time) to the loop;
// with last it also ends the response. A 101 head waits for Hijack or finish.
func (w *responseWriter) flushBuf(last bool) error {
	if !last && w.switching() {
		return nil
	}
	data := w.buf
	w.buf = nil
	first := !w.headPosted
	w.headPosted = true
	var trailers http.Header
	if last {
		trailers = w.collectTrailers()
	}
	var hdr []field
	status := w.status
	if first {
		s := &w.snapshot
		sniffed := data
		if w.isHead {
			sniffed = w.sniff
		}
		if !w.noSniff && len(sniffed) > 0 && bodyAllowed(status) {
			s.list = append(s.list, field{"Content-Type", http.DetectContentType(sniffed)})
		}
		hdr = s.list
		// A response with trailers stays chunked, so that they reach an HTTP/1.1
		// client: a Content-Length would leave no place for them. An HTTP/1.0 one
		// cannot get them anyway, and keeps its connection with the length. On
		// HTTP/2 the length goes with trailers (as net/http sends it) unless it is
		// zero, which would end the stream with the head.
		hasTrailers := len(trailers) > 0 || w.declaresTrailers()
		h1 := w.x.c != nil
		needNoLength := hasTrailers && (h1 && w.req.ProtoAtLeast(1, 1) || !h1 && w.written == 0)
		if last && w.contentLength < 0 && bodyAllowed(status) && !needNoLength {
			w.contentLength = w.written
		}
	}
	cl := w.contentLength
	c := w.x.ex
	p := &w.x.pipe
	n := len(data)
	if err := p.reserve(n); err != nil {
		return err
	}
	// One closure, not send's two: this runs for every response.
	w.x.postRaw(func() {
		if !p.begin() {
			return
		}
		if first {
			var declared []string
			h1 := w.x.c != nil
			for _, f := range hdr {
				if h1 && needsCleaning(f.value) {
					// As net/http's HTTP/1 server writes such a value: line breaks
					// as spaces, so the field is neither split nor dropped, and no
					// leading or trailing blanks. (Its HTTP/2 server drops a field
					// with line breaks, as the stream does.)
					f.value = strings.Trim(newlineToSpace.Replace(f.value), " \t")
				}
				switch {
				case f.name == "Trailer":
					declared = append(declared, f.value)
				case f.name == "Content-Type" && status == http.StatusNotModified:
					// As net/http (and nginx) send a 304: without the
					// representation's type (RFC 9110 §15.4.5).
				case !strings.HasPrefix(f.name, http.TrailerPrefix):
					c.Header().Add(f.name, f.value)
				}
			}
			if len(declared) > 0 {
				c.Header().Set("Trailer", strings.Join(declared, ", "))
			}
			if cl >= 0 {
				c.SetContentLength(cl)
			}
			if status == http.StatusRequestEntityTooLarge && w.x.c != nil && w.x.hasBody {
				// As net/http closes the connection after http.MaxBytesReader's
				// 413 (through a hook of its own ResponseWriter, out of reach)
				// and nginx after its own: the rest of a body too large to
				// serve is not read.
				w.x.c.SetKeepAlive(false)
			}
			c.WriteHeader(status)
		}
		if len(data) > 0 {
			c.Write(data)
		}
		if last {
			for k, vs := range trailers {
				for _, v := range vs {
					c.Trailer().Add(k, v)
				}
			}
			c.End()
		}
		p.wrote(n)
	})
	return nil
}

// newlineToSpace turns the line breaks of a response field value into spaces.
var newlineToSpace = strings.NewReplacer("\r", " ", "\n", " ")

// needsCleaning reports whether an HTTP/1 response field value holds a line break
// or begins or ends with a blank, which net/http's server replaces or trims.
func needsCleaning(v string) bool {
	if v == "" {
		return false
	}
	blank := func(c byte) bool { return c == ' ' || c == '\t' }
	return blank(v[0]) || blank(v[len(v)-1]) || strings.ContainsAny(v, "\r\n")
}

// declaresTrailers reports whether the head, as of WriteHeader, announces
// trailers with a Trailer field.
func (w *responseWriter) declaresTrailers() bool {
	for _, f := range w.snapshot.list {
		if f.name == "Trailer" && strings.TrimSpace(f.value) != "" {
			return true
		}
	}
	return false
}

// collectTrailers gathers the values of declared trailers and of keys with
// http.TrailerPrefix, as net/http does.
func (w *responseWriter) collectTrailers() http.Header {
	var out http.Header
	add := func(k string, vs []string) {
		if out == nil {
			out = http.Header{}
		}
		out[k] = vs
	}
	for _, f := range w.snapshot.list {
		if f.name != "Trailer" {
			continue
		}
		for _, name := range strings.Split(f.value, ",") {
			k := http.CanonicalHeaderKey(strings.TrimSpace(name))
			if vs := w.header[k]; len(vs) > 0 {
				add(k, vs)
			}
		}
	}
	for k, vs := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			add(strings.TrimPrefix(k, http.TrailerPrefix), vs)
		}
	}
	return out
}

// finish runs after ServeHTTP returns.
func (w *responseWriter) finish() {
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(200)
	}
	w.x.pipe.closeRead()
	if w.switching() {
		// WriteHeader(101) without Hijack: as net/http, the bare 101 head goes out.
		// Nothing can follow it but the protocol nobody took over, so the
		// connection closes after it (net/http leaves it open, unused).
		if hc, _, err := w.Hijack(); err == nil {
			hc.Close()
			return
		}
	}
	if err := w.flushBuf(true); errors.Is(err, os.ErrDeadlineExceeded) {
		// The write deadline the handler set has passed: the response cannot be
		// completed, and the connection (the stream) must not wait for it.
		w.abort()
	}
}

// errAborted is the close reason of a connection whose handler panicked with
// http.ErrAbortHandler or after its response started.
var errAborted = errors.New("nethttp: handler aborted")

// abort resets the connection (an HTTP/2 stream: the stream) without completing
// the response.
func (w *responseWriter) abort() {
	if w.x.c == nil {
		sx := w.x.stream()
		sx.Post(sx.Reset)
		return
	}
	c := w.x.c
	c.Post(func() { c.Conn().Abort(errAborted) })
}

// panicked answers 500 if nothing was sent yet, else aborts the connection; a
// hijacked connection is the handler's, and is left alone (the panic is logged).
func (w *responseWriter) panicked(msg string) {
	if w.x.c == nil {
		w.x.stream().Logger().Error("net/http handler panicked", "panic", msg)
	} else {
		w.x.c.Logger().Error("net/http handler panicked", "panic", msg)
	}
	if w.hijacked {
		return
	}
	if w.headPosted {
		w.abort()
		return
	}
	w.headPosted = true
	ex := w.x.ex
	if err := w.x.pipe.send(0, func() { ex.Error(500, "") }); errors.Is(err, os.ErrDeadlineExceeded) {
		w.abort()
	}
}

// Hijack hands the raw connection to the handler (for protocol upgrades). Bytes
// the client sent after the request head are available from the returned reader.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.headPosted {
		return nil, nil, errors.New("nethttp: cannot hijack after the response started")
	}
	// The connection is the handler's from here: no response timeout (net/http
	// clears its deadlines on Hijack).
	w.x.stopWatch()
	if err := w.x.pipe.outputErr(); err != nil {
		return nil, nil, err
	}
	// As net/http does, a head set with WriteHeader but not yet sent (coder/websocket
	// writes its 101 that way before hijacking) goes out before the connection is
	// handed over.
	var head []byte
	if w.wroteHeader {
		var b bytes.Buffer
		fmt.Fprintf(&b, "HTTP/1.1 %03d %s\r\n", w.status, http.StatusText(w.status))
		w.snapshot.header().Write(&b)
		b.WriteString("\r\n")
		head = b.Bytes()
	}
	hc, err := hijack(w.x.c, w.req.Context().Done(), head)
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	return hc, bufio.NewReadWriter(bufio.NewReader(hc), bufio.NewWriter(hc)), nil
}

// field is one response header field as of WriteHeader.
type field struct{ name, value string }

// fieldList is the response header as of WriteHeader, flat: net/http sends the
// header as it was then, and a list of (name, value) pairs over a fixed array takes
// that copy without the three allocations of http.Header.Clone for a typical
// response. Owned by the handler goroutine until the head is posted, then read only.
type fieldList struct {
	list []field
	arr  [8]field
}

// take copies h (the strings are shared; they are immutable) into the list. A
// Date key without values, net/http's way to ask for no Date, becomes an empty
// Date field, the server's.
func (l *fieldList) take(h http.Header) {
	l.list = l.arr[:0]
	for k, vs := range h {
		if len(vs) == 0 && k == "Date" {
			l.list = append(l.list, field{k, ""})
		}
		for _, v := range vs {
			l.list = append(l.list, field{k, v})
		}
	}
}

// get returns the first value of the canonical name, or "", as http.Header.Get
// would for the header the list was taken from.
func (l *fieldList) get(name string) string {
	for _, f := range l.list {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

// header returns the list as an http.Header (for the rare paths that need one).
func (l *fieldList) header() http.Header {
	h := make(http.Header, len(l.list))
	for _, f := range l.list {
		h[f.name] = append(h[f.name], f.value)
	}
	return h
}
