package websocket

import (
	"strings"
	"testing"
)

// TestReadFrameAllocs checks that reading frames, handshakes aside, allocates nothing.
func TestReadFrameAllocs(t *testing.T) {
	in := cat(cf(nil, false, OpText, "hello "), cf(nil, true, OpPing, "p"), cf(nil, true, OpContinuation, "world"))
	buf := make([]byte, len(in))
	allocs := testing.AllocsPerRun(100, func() {
		copy(buf, in)
		r := Reader{}
		for b := buf; len(b) > 0; {
			_, n, err := r.ReadFrame(b)
			if err != nil {
				t.Fatal(err)
			}
			b = b[n:]
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func BenchmarkReadFrame64(b *testing.B)  { benchReadFrame(b, 64) }
func BenchmarkReadFrame64K(b *testing.B) { benchReadFrame(b, 64<<10) }

// benchReadFrame reads one masked text frame of n ASCII bytes (unmasking and UTF-8
// validation included).
func benchReadFrame(b *testing.B, n int) {
	in := cf(nil, true, OpText, strings.Repeat("a", n))
	buf := make([]byte, len(in))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, in)
		r := Reader{}
		if _, _, err := r.ReadFrame(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandshake(b *testing.B) {
	req := request("GET", nil, "Origin: http://example.com", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
	d := DefaultDeflateOptions()
	opt := HandshakeOptions{Deflate: &d}
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		a, err := Handshake(req, &opt)
		if err != nil {
			b.Fatal(err)
		}
		out = a.AppendResponse(out[:0])
	}
}

func BenchmarkDeflateRoundTrip1K(b *testing.B) {
	msg := []byte(strings.Repeat("gale websocket ", 70))
	var p DeflatePool
	var comp, out []byte
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		c := p.GetCompressor()
		comp, _ = c.Compress(comp[:0], msg, false, 15)
		p.PutCompressor(c)
		d := p.GetDecompressor()
		var err error
		out, err = d.Inflate(out[:0], comp, nil, 1<<20, true)
		p.PutDecompressor(d)
		if err != nil {
			b.Fatal(err)
		}
	}
}
