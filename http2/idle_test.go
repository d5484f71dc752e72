package http2

import (
	"runtime"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// TestIdleConnMemory measures what an idle connection costs after one request and response:
// the Conn, its HPACK tables and nothing else. The bound is generous; the figure is logged.
func TestIdleConnMemory(t *testing.T) {
	const n = 500
	conns := make([]*Conn, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range conns {
		h := &nopHandler{}
		h.c = NewConn(Config{}, h)
		in := append([]byte(Preface), AppendSettings(nil, false)...)
		in = AppendSettings(in, true)
		in = append(in, clientRequest()...)
		if _, err := h.c.Feed(in); err != nil {
			t.Fatal(err)
		}
		h.c.Drained(len(h.c.Out()))
		conns[i] = h.c
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("idle connection after one request: %d bytes", per)
	if per > 8<<10 {
		t.Fatalf("idle connection holds %d bytes", per)
	}
	runtime.KeepAlive(conns)
}

// clientRequest is one GET with a few typical fields, as a browser would send it.
func clientRequest() []byte {
	r := &rig{}
	r.enc = hpack.NewEncoder(&r.encBuf)
	return r.get(1, true, "user-agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/130.0",
		"accept", "text/html,application/xhtml+xml", "accept-language", "en-US,en;q=0.5", "cookie", "session=0123456789abcdef")
}
