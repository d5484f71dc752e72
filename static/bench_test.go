package static

import (
	"testing"
	"time"
)

// nopExchange is an exchange that discards the response, for measuring the handler's
// own cost per request.
type nopExchange struct {
	hdr map[string]string
	now time.Time
}

func (n *nopExchange) ReqHeader(name string) ([]byte, bool) {
	v, ok := n.hdr[name]
	return []byte(v), ok
}
func (n *nopExchange) IsHead() bool                                        { return false }
func (n *nopExchange) Now() time.Time                                      { return n.now }
func (n *nopExchange) SetHeader(name, value string)                        {}
func (n *nopExchange) AppendHeader(lines []byte)                           {}
func (n *nopExchange) SetContentLength(int64)                              {}
func (n *nopExchange) WriteHeader(int)                                     {}
func (n *nopExchange) Write(p []byte) (int, error)                         { return len(p), nil }
func (n *nopExchange) End()                                                {}
func (n *nopExchange) Respond(status int, contentType string, body []byte) {}
func (n *nopExchange) Error(status int, msg string)                        {}
func (n *nopExchange) SendFile(fd int, off, size int64, release func()) {
	if release != nil {
		release()
	}
}

func benchServe(b *testing.B, path string, hdr map[string]string) {
	root := b.TempDir()
	writeTree(b, root, map[string]string{"small.css": bigContent(4096), "big.bin": bigContent(1 << 20),
		"app.js": bigContent(8192), "app.js.br": bigContent(2000)})
	h, err := New(Options{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	x := &nopExchange{hdr: hdr, now: time.Now()}
	method, raw := []byte("GET"), []byte(path)
	b.ReportAllocs()
	for b.Loop() {
		h.serve(x, method, raw, nil)
	}
}

func BenchmarkServeSmallHit(b *testing.B) { benchServe(b, "/small.css", nil) }
func BenchmarkServeLargeHit(b *testing.B) { benchServe(b, "/big.bin", nil) }
func BenchmarkServeVariantHit(b *testing.B) {
	benchServe(b, "/app.js", map[string]string{"Accept-Encoding": "gzip, deflate, br, zstd"})
}
func BenchmarkServeRange(b *testing.B) {
	benchServe(b, "/big.bin", map[string]string{"Range": "bytes=1000-1999"})
}
