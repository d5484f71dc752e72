package server

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gale-server/gale/http2"
	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkH2TinyRespond measures the HTTP/2 hot path: b.N GETs answered by a fixed
// response, 100 streams in flight per batch on one loopback connection (as h2load -m100
// does), read back by a client that parses frame headers only, so allocs/op is what the
// server spends per stream.
func BenchmarkH2TinyRespond(b *testing.B) {
	h := exchFunc(func(x Exchange) { x.Respond(200, "text/plain", []byte("hello")) })
	s, err := New(Options{Handler: h, Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	l, err := s.ListenHTTP2("127.0.0.1:0", h, HTTP2Options{})
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	shutdownAtCleanup(b, s)
	c := testkit.Dial(b, l.Addr)
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	block := func() []byte {
		blk.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x"}, {"user-agent", "h2load nghttp2/1.52.0"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		return bytes.Clone(blk.Bytes())
	}
	c.Write(append(http2.AppendSettings([]byte(http2.Preface), false, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30}),
		http2.AppendWindowUpdate(http2.AppendSettings(nil, true), 0, 1<<30)...))
	const batch = 100
	id := uint32(1)
	var out []byte
	buf := make([]byte, 256<<10)
	got, ends := 0, 0
	run := func(n int) {
		out = out[:0]
		for range n {
			out = http2.AppendHeaders(out, id, block(), true, http2.MinMaxFrameSize)
			id += 2
		}
		c.Write(out)
		for ends < n {
			m, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += m
			off := 0
			for got-off >= 9 {
				ln := int(binary.BigEndian.Uint32(buf[off:])>>8) + 9
				if got-off < ln {
					break
				}
				if (buf[off+3] == 0 || buf[off+3] == 1) && buf[off+4]&1 != 0 {
					ends++
				}
				off += ln
			}
			got = copy(buf, buf[off:got])
		}
		ends -= n
	}
	run(batch)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		run(min(batch, b.N-done))
	}
}
