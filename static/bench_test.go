package static

import (
	"testing"
	"time"

	"github.com/gale-server/gale/server/servertest"
)

// nopExchange is servertest's exchange with the per-request paths made free (no
// string conversions, no copies, no reads), so the benchmark measures the handler's
// own cost per request.
type nopExchange struct {
	*servertest.Exchange
	method, path []byte
	hdr          map[string][]byte
}

func (n *nopExchange) Method() []byte { return n.method }
func (n *nopExchange) Path() []byte   { return n.path }
func (n *nopExchange) Query() []byte  { return nil }
func (n *nopExchange) ReqHeader(name string) ([]byte, bool) {
	v, ok := n.hdr[name]
	return v, ok
}
func (n *nopExchange) WriteHeader(int)             {}
func (n *nopExchange) Write(p []byte) (int, error) { return len(p), nil }
func (n *nopExchange) End()                        {}
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
	x := &nopExchange{Exchange: servertest.New("GET", path), method: []byte("GET"), path: []byte(path), hdr: map[string][]byte{}}
	for k, v := range hdr {
		x.hdr[k] = []byte(v)
	}
	x.Clock = time.Now()
	b.ReportAllocs()
	for b.Loop() {
		x.Header().Reset()
		h.serve(x)
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
