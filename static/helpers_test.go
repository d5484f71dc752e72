package static

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recorder is an exchange that records the response. Sends made with SendFile are read
// from the descriptor at once; their release funcs are called at once too, unless
// holdSends is set, in which case they wait in pending.
type recorder struct {
	method, path, query string
	reqHeader           map[string]string // lower-case name → value
	now                 time.Time

	status        int
	header        []string // "Name: value", in order
	contentLength int64
	body          bytes.Buffer
	ended         bool
	sendFiles     int
	writes        int
	holdSends     bool
	pending       []func()
	t             *testing.T
}

func newRecorder(t *testing.T, method, target string, hdr ...string) *recorder {
	r := &recorder{t: t, method: method, reqHeader: map[string]string{}, contentLength: -1, now: time.Unix(1_700_000_000, 0)}
	r.path, r.query, _ = strings.Cut(target, "?")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.reqHeader[strings.ToLower(hdr[i])] = hdr[i+1]
	}
	return r
}

func (r *recorder) ReqHeader(name string) ([]byte, bool) {
	v, ok := r.reqHeader[strings.ToLower(name)]
	return []byte(v), ok
}
func (r *recorder) IsHead() bool   { return r.method == "HEAD" }
func (r *recorder) Now() time.Time { return r.now }
func (r *recorder) SetHeader(name, value string) {
	out := r.header[:0]
	for _, f := range r.header {
		if n, _, _ := strings.Cut(f, ": "); !strings.EqualFold(n, name) {
			out = append(out, f)
		}
	}
	r.header = append(out, name+": "+value)
}
func (r *recorder) AppendHeader(lines []byte) {
	for l := range strings.SplitSeq(strings.TrimSuffix(string(lines), "\r\n"), "\r\n") {
		if l != "" {
			r.header = append(r.header, l)
		}
	}
}
func (r *recorder) SetContentLength(n int64) { r.contentLength = n }
func (r *recorder) WriteHeader(status int) {
	if r.status != 0 {
		r.t.Errorf("WriteHeader(%d) after %d", status, r.status)
	}
	r.status = status
}
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.t.Error("Write before WriteHeader")
	}
	r.writes++
	if !r.IsHead() {
		r.body.Write(p)
	}
	return len(p), nil
}
func (r *recorder) SendFile(fd int, off, n int64, release func()) {
	if r.status == 0 {
		r.t.Error("SendFile before WriteHeader")
	}
	r.sendFiles++
	buf := make([]byte, n)
	got, err := preadFD(fd, buf, off)
	if err != nil || int64(got) != n {
		r.t.Errorf("SendFile(fd %d, %d, %d): read %d: %v", fd, off, n, got, err)
	}
	if !r.IsHead() {
		r.body.Write(buf[:got])
	}
	if r.holdSends {
		r.pending = append(r.pending, release)
	} else if release != nil {
		release()
	}
}
func (r *recorder) End() { r.ended = true }
func (r *recorder) Respond(status int, contentType string, body []byte) {
	r.SetHeader("Content-Type", contentType)
	r.SetContentLength(int64(len(body)))
	r.WriteHeader(status)
	r.Write(body)
	r.End()
}

// Error mimics server.Ctx.Error, which drops the headers set so far.
func (r *recorder) Error(status int, msg string) {
	r.header = nil
	r.Respond(status, "text/plain; charset=utf-8", []byte(strconv.Itoa(status)+" "+msg+"\n"))
}

// get returns the first value of a response field, or "".
func (r *recorder) get(name string) string {
	for _, f := range r.header {
		if n, v, _ := strings.Cut(f, ": "); strings.EqualFold(n, name) {
			return v
		}
	}
	return ""
}

func (r *recorder) releasePending() {
	for _, f := range r.pending {
		f()
	}
	r.pending = nil
}

// do serves one request through h and checks the response is complete and consistent.
func do(t *testing.T, h *Handler, method, target string, hdr ...string) *recorder {
	t.Helper()
	r := newRecorder(t, method, target, hdr...)
	h.serveRaw(r, []byte(r.method), []byte(r.path), []byte(r.query))
	if !r.ended {
		t.Fatalf("%s %s: response not ended", method, target)
	}
	if r.contentLength >= 0 && method != "HEAD" && int64(r.body.Len()) != r.contentLength {
		t.Fatalf("%s %s: Content-Length %d, body %d bytes", method, target, r.contentLength, r.body.Len())
	}
	return r
}

// writeTree creates files under dir from name → content; names ending in '/' are
// directories.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newHandler(t *testing.T, opts Options) *Handler {
	t.Helper()
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// bigContent returns n bytes of numbered lines, so any misplaced range shows.
func bigContent(n int) string {
	b := make([]byte, 0, n+8)
	for i := 0; len(b) < n; i++ {
		l := len(b)
		b = strconv.AppendInt(b, int64(i), 10)
		for len(b)-l < 7 {
			b = append(b, ' ')
		}
		b = append(b, '\n')
	}
	return string(b[:n])
}
