package server

import (
	"bytes"
	"io"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// benchPipelined sends b.N requests in pipelined batches of 64 over one real
// loopback connection and reads every response, so allocs/op counts what the
// server spends per request (the client side does not allocate per request).
func benchPipelined(b *testing.B, h Handler, req string, respLen int) {
	s := startServer(b, h, func(o *Options) { o.Workers = 1 })
	c := testkit.Dial(b, s.Addr())
	const batch = 64
	// Warm up the loop's pools and caches.
	c.Write(bytes.Repeat([]byte(req), batch))
	if _, err := io.ReadFull(c, make([]byte, respLen*batch)); err != nil {
		b.Fatal(err)
	}
	testkit.Pipelined(b, c, req, respLen, batch)
}

// BenchmarkTinyRespond measures the tiny hot path: a fixed response from the
// respond action.
func BenchmarkTinyRespond(b *testing.B) {
	h := HandlerFunc(func(c *Ctx) { c.Respond(200, "text/plain", []byte("hello")) })
	probe := startServer(b, h, func(o *Options) { o.Workers = 1 })
	n := responseLen(b, probe.Addr(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	benchPipelined(b, h, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", n)
}

// responseLen returns the length of one response to req (fixed for a fixed handler,
// since the Date header has a fixed width).
func responseLen(b *testing.B, addr, req string) int {
	c := testkit.Dial(b, addr)
	c.Write([]byte(req + req))
	buf := make([]byte, 64<<10)
	total := 0
	for {
		n, err := c.Read(buf[total:])
		if err != nil {
			b.Fatal(err)
		}
		total += n
		if i := bytes.Index(buf[:total], []byte("HTTP/1.1 ")); i == 0 {
			if j := bytes.Index(buf[1:total], []byte("HTTP/1.1 ")); j >= 0 {
				return j + 1
			}
		}
	}
}
