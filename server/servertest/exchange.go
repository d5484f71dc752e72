// Package servertest provides an in-memory server.Exchange: a second implementation
// of the protocol-neutral request and response interface beside the HTTP/1.1 Ctx. It
// lets a feature (static, respond, a proxy) be tested without a socket, and it proves
// that the feature depends on the seam only, so an HTTP/2 stream can serve it too.
package servertest

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/server"
)

// Exchange records one response in memory. Build it with New; fill the request
// fields as needed before serving. It is not safe for concurrent use; Post runs its
// closure at once.
type Exchange struct {
	// Request side.
	MethodS, TargetS, PathS, QueryS, HostS string
	ReqFields                              []http1.Header
	ProtoS                                 string
	Remote                                 netip.AddrPort
	Clock                                  time.Time
	ReqBody                                []byte

	// ReadFile is how SendFile reads the file's bytes; it defaults to pread(2).
	ReadFile func(fd int, off, n int64) ([]byte, error)
	// HoldReleases keeps SendFile release funcs in Pending instead of calling them.
	HoldReleases bool
	Pending      []func()
	// TB, when set, reports protocol misuse (a second WriteHeader, a write after End).
	TB testing.TB

	// Response side, as the client would see it.
	Status        int      // 0 until the head is written
	Fields        []string // "Name: value" in order, set fields first, then raw lines
	ContentLength int64    // as declared, -1 unknown
	Body          bytes.Buffer
	Informational []int
	Done          bool // End was called
	Writes        int
	SendFiles     int
	Gone          bool // set by the test: the client went away

	hdr, trailer server.Header
	status       int
	onDrain      func()
	onClose      func(error)
}

var _ server.Exchange = (*Exchange)(nil)

// New returns an exchange for method and target ("/path?query") with request fields
// given as name, value pairs.
func New(method, target string, fields ...string) *Exchange {
	x := &Exchange{MethodS: method, TargetS: target, ProtoS: "HTTP/2.0", ContentLength: -1,
		Clock: time.Unix(1_700_000_000, 0), status: 200}
	x.PathS, x.QueryS, _ = strings.Cut(target, "?")
	for i := 0; i+1 < len(fields); i += 2 {
		x.ReqFields = append(x.ReqFields, http1.Header{Name: []byte(fields[i]), Value: []byte(fields[i+1])})
	}
	return x
}

func (x *Exchange) problem(format string, args ...any) {
	if x.TB != nil {
		x.TB.Helper()
		x.TB.Errorf("servertest: "+format, args...)
	}
}

// Method returns the request method.
func (x *Exchange) Method() []byte { return []byte(x.MethodS) }

// Target returns the request-target.
func (x *Exchange) Target() []byte { return []byte(x.TargetS) }

// Path returns the target's path.
func (x *Exchange) Path() []byte { return []byte(x.PathS) }

// NormPath returns nil: the in-memory exchange leaves normalization to the feature,
// like a protocol that does not normalize.
func (x *Exchange) NormPath() []byte { return nil }

// Query returns the raw query, nil when the target has none.
func (x *Exchange) Query() []byte {
	if x.QueryS == "" && !strings.Contains(x.TargetS, "?") {
		return nil
	}
	return []byte(x.QueryS)
}

// Host returns the authority.
func (x *Exchange) Host() []byte { return []byte(x.HostS) }

// ReqHeader returns the first value of a request field.
func (x *Exchange) ReqHeader(name string) ([]byte, bool) {
	for _, f := range x.ReqFields {
		if http1.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return nil, false
}

// SetReqHeader replaces (or adds) a request field.
func (x *Exchange) SetReqHeader(name, value string) {
	for i, f := range x.ReqFields {
		if http1.EqualFold(f.Name, name) {
			x.ReqFields[i].Value = []byte(value)
			return
		}
	}
	x.ReqFields = append(x.ReqFields, http1.Header{Name: []byte(name), Value: []byte(value)})
}

// EachReqHeader calls f for every request field.
func (x *Exchange) EachReqHeader(f func(name, value []byte)) {
	for _, h := range x.ReqFields {
		f(h.Name, h.Value)
	}
}

// Proto returns ProtoS ("HTTP/2.0" by default: not HTTP/1).
func (x *Exchange) Proto() string { return x.ProtoS }

// RemoteAddr returns Remote.
func (x *Exchange) RemoteAddr() netip.AddrPort { return x.Remote }

// IsHead reports a HEAD request.
func (x *Exchange) IsHead() bool { return x.MethodS == "HEAD" }

// Now returns Clock.
func (x *Exchange) Now() time.Time { return x.Clock }

// OnBody delivers ReqBody in one piece, then the end.
func (x *Exchange) OnBody(f func(p []byte, end bool)) {
	if len(x.ReqBody) > 0 {
		f(x.ReqBody, false)
	}
	f(nil, true)
}

// ReadBody calls f with ReqBody.
func (x *Exchange) ReadBody(f func(body []byte)) { f(x.ReqBody) }

// PauseBody does nothing: the body is delivered at once.
func (x *Exchange) PauseBody() {}

// ResumeBody does nothing.
func (x *Exchange) ResumeBody() {}

// Header returns the response fields to fill.
func (x *Exchange) Header() *server.Header { return &x.hdr }

// Trailer returns the trailer fields.
func (x *Exchange) Trailer() *server.Header { return &x.trailer }

// SetStatus sets the implicit status.
func (x *Exchange) SetStatus(status int) { x.status = status }

// SetContentLength declares the body length.
func (x *Exchange) SetContentLength(n int64) {
	if x.Status != 0 {
		x.problem("SetContentLength after WriteHeader")
	}
	x.ContentLength = n
}

// WriteInformational records a 1xx status.
func (x *Exchange) WriteInformational(status int, h *server.Header) {
	x.Informational = append(x.Informational, status)
}

// WriteHeader records the status and a snapshot of the fields.
func (x *Exchange) WriteHeader(status int) {
	if x.Status != 0 {
		x.problem("WriteHeader(%d) after %d", status, x.Status)
		return
	}
	x.Status = status
	x.hdr.Each(func(name, value string) { x.Fields = append(x.Fields, name+": "+value) })
	for l := range strings.SplitSeq(string(x.hdr.Raw()), "\r\n") {
		if l != "" {
			x.Fields = append(x.Fields, l)
		}
	}
	if status == 204 || status == 304 {
		x.ContentLength = 0
	}
}

func (x *Exchange) bodyAllowed() bool {
	return !x.IsHead() && x.Status != 204 && x.Status != 304
}

// Write records body bytes.
func (x *Exchange) Write(p []byte) (int, error) {
	if x.Done {
		x.problem("Write after End")
		return 0, server.ErrEnded
	}
	if x.Status == 0 {
		x.WriteHeader(x.status)
	}
	x.Writes++
	if x.bodyAllowed() {
		x.Body.Write(p)
	}
	return len(p), nil
}

// SendFile reads the bytes with ReadFile and records them as body bytes.
func (x *Exchange) SendFile(fd int, off, n int64, release func()) {
	if x.Status == 0 {
		x.WriteHeader(x.status)
	}
	x.SendFiles++
	read := x.ReadFile
	if read == nil {
		read = preadAll
	}
	b, err := read(fd, off, n)
	if err != nil || int64(len(b)) != n {
		x.problem("SendFile(fd %d, %d, %d): read %d: %v", fd, off, n, len(b), err)
	}
	if x.bodyAllowed() {
		x.Body.Write(b)
	}
	if x.HoldReleases {
		x.Pending = append(x.Pending, release)
	} else if release != nil {
		release()
	}
}

// ReleasePending runs the release funcs HoldReleases kept.
func (x *Exchange) ReleasePending() {
	for _, f := range x.Pending {
		if f != nil {
			f()
		}
	}
	x.Pending = nil
}

// End completes the response; a body shorter or longer than the declared length is a
// problem.
func (x *Exchange) End() {
	if x.Done {
		return
	}
	if x.Status == 0 {
		if x.ContentLength < 0 {
			x.ContentLength = 0
		}
		x.WriteHeader(x.status)
	}
	if x.ContentLength >= 0 && x.bodyAllowed() && int64(x.Body.Len()) != x.ContentLength {
		x.problem("body is %d bytes, Content-Length %d", x.Body.Len(), x.ContentLength)
	}
	x.Done = true
}

// Respond writes a complete response.
func (x *Exchange) Respond(status int, contentType string, body []byte) {
	if contentType != "" {
		x.hdr.Set("Content-Type", contentType)
	}
	x.SetContentLength(int64(len(body)))
	x.WriteHeader(status)
	x.Write(body)
	x.End()
}

// Error drops the fields set so far, as server.Ctx does, and answers
// "<status> <msg>\n".
func (x *Exchange) Error(status int, msg string) {
	x.hdr.Reset()
	x.Respond(status, "text/plain; charset=utf-8", []byte(strconv.Itoa(status)+" "+msg+"\n"))
}

// OnDrain keeps f; Drain runs it.
func (x *Exchange) OnDrain(f func()) { x.onDrain = f }

// Drain runs the OnDrain callback once, as the protocol would when output drained.
func (x *Exchange) Drain() {
	if f := x.onDrain; f != nil {
		x.onDrain = nil
		f()
	}
}

// Buffered reports nothing queued: the recorder takes everything at once.
func (x *Exchange) Buffered() int { return 0 }

// HeadSent reports whether WriteHeader ran.
func (x *Exchange) HeadSent() bool { return x.Status != 0 }

// Ended reports whether End ran.
func (x *Exchange) Ended() bool { return x.Done }

// Closed reports Gone.
func (x *Exchange) Closed() bool { return x.Gone }

// OnClose keeps f; Close runs it.
func (x *Exchange) OnClose(f func(err error)) { x.onClose = f }

// Close marks the client gone and runs the OnClose callback with err.
func (x *Exchange) Close(err error) {
	x.Gone = true
	if f := x.onClose; f != nil && !x.Done {
		x.onClose = nil
		f(err)
	}
}

// Detach does nothing: the recorder's request is owned memory already.
func (x *Exchange) Detach() {}

// Post runs f at once unless the client has gone.
func (x *Exchange) Post(f func()) {
	if !x.Gone {
		f()
	}
}

// Get returns the first value of a sent response field, or "".
func (x *Exchange) Get(name string) string {
	for _, f := range x.Fields {
		if n, v, _ := strings.Cut(f, ": "); http1.EqualFold(n, name) {
			return v
		}
	}
	return ""
}

// String renders the recorded response for failure messages.
func (x *Exchange) String() string {
	return fmt.Sprintf("%d %v %q", x.Status, x.Fields, x.Body.String())
}

// Reset clears the response side so the exchange can serve the same request again
// (benchmarks), keeping its storage.
func (x *Exchange) Reset() {
	x.hdr.Reset()
	x.trailer.Reset()
	x.Body.Reset()
	x.Status, x.status, x.ContentLength, x.Done = 0, 200, -1, false
	x.Fields, x.Informational = x.Fields[:0], x.Informational[:0]
	x.Writes, x.SendFiles, x.Pending = 0, 0, x.Pending[:0]
	x.onDrain, x.onClose = nil, nil
}
