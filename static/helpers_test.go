package static

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gale-server/gale/server/servertest"
)

// recorder is the in-memory server.Exchange from servertest: the static handler is
// tested through it, not through the HTTP/1.1 Ctx, which proves it needs nothing but
// the protocol-neutral seam. SendFile bytes are read from the descriptor at once.
type recorder = servertest.Exchange

func newRecorder(t *testing.T, method, target string, hdr ...string) *recorder {
	r := servertest.New(method, target, hdr...)
	r.TB = t
	return r
}

// do serves one request through h and checks the response is complete and consistent.
func do(t *testing.T, h *Handler, method, target string, hdr ...string) *recorder {
	t.Helper()
	r := newRecorder(t, method, target, hdr...)
	h.ServeExchange(r)
	if !r.Done {
		t.Fatalf("%s %s: response not ended", method, target)
	}
	if r.ContentLength >= 0 && method != "HEAD" && int64(r.Body.Len()) != r.ContentLength {
		t.Fatalf("%s %s: Content-Length %d, body %d bytes", method, target, r.ContentLength, r.Body.Len())
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
