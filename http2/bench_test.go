package http2

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// nopHandler answers every request with a 200 and a small body.
type nopHandler struct{ c *Conn }

var benchBody = []byte("hello, world")

func (h *nopHandler) OnRequest(s *Stream) {
	_ = h.c.WriteHeaders(s.ID, 200, []Field{{"content-type", "text/plain"}}, false)
	_, _ = h.c.WriteData(s.ID, benchBody, true)
}
func (h *nopHandler) OnData(s *Stream, p []byte, end bool)               { h.c.Consumed(s.ID, len(p)) }
func (h *nopHandler) OnTrailers(s *Stream, tr []Field)                   {}
func (h *nopHandler) OnStreamReset(s *Stream, code ErrCode, byPeer bool) {}
func (h *nopHandler) OnWritable(s *Stream)                               {}
func (h *nopHandler) OnGoAway(code ErrCode, debug []byte)                {}

var _ Handler = (*nopHandler)(nil)

// BenchmarkConnRequest measures one GET and its response on an established connection.
func BenchmarkConnRequest(b *testing.B) {
	h := &nopHandler{}
	h.c = NewConn(Config{}, h)
	in := append([]byte(Preface), AppendSettings(nil, false)...)
	in = AppendSettings(in, true)
	if _, err := h.c.Feed(in); err != nil {
		b.Fatal(err)
	}
	h.c.Drained(len(h.c.Out()))
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "example.com"}, {"user-agent", "bench"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	first := bytes.Clone(blk.Bytes())
	blk.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "example.com"}, {"user-agent", "bench"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	again := bytes.Clone(blk.Bytes()) // indexed from the dynamic table from now on
	frame := AppendHeaders(nil, 1, first, true, MinMaxFrameSize)
	if _, err := h.c.Feed(frame); err != nil {
		b.Fatal(err)
	}
	h.c.Drained(len(h.c.Out()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		frame = AppendHeaders(frame[:0], uint32(2*i+3), again, true, MinMaxFrameSize)
		if i%1000 == 0 { // as a reading client would, in batches
			frame = AppendWindowUpdate(frame, 0, 1000*uint32(len(benchBody)))
		}
		if _, err := h.c.Feed(frame); err != nil {
			b.Fatal(err)
		}
		h.c.Drained(len(h.c.Out()))
	}
}
