package nethttp

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/gale-server/gale/server"
)

// BenchmarkAdapterKeepAlive measures one keep-alive request at a time through the
// adapter (allocations are the process's, client included).
func BenchmarkAdapterKeepAlive(b *testing.B) {
	p := server.NewPool(0, 0)
	defer p.Close()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"hello":"world"}`)
	})
	s, err := server.New(server.Options{Handler: Adapt(h, p), Workers: 2})
	if err != nil {
		b.Fatal(err)
	}
	addr, _ := s.Listen("127.0.0.1:0")
	s.Start()
	defer s.Shutdown(context.Background())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /?q=x HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	c.Write(req)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		b.Fatal(err)
	}
	io.ReadAll(resp.Body)
	// Date changes once per second but keeps its length: responses have a fixed size.
	c.Write(req)
	var n int
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		n += len(line)
		if line == "\r\n" {
			break
		}
	}
	n += len(`{"hello":"world"}`)
	br.Discard(len(`{"hello":"world"}`))
	buf := make([]byte, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(req)
		if _, err := io.ReadFull(br, buf); err != nil {
			b.Fatal(err)
		}
	}
}
