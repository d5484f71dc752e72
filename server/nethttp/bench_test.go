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
	benchKeepAlive(b, []byte("GET /?q=x HTTP/1.1\r\nHost: x\r\n\r\n"))
}

// BenchmarkAdapterBrowserHeaders is BenchmarkAdapterKeepAlive with the fields a
// browser sends.
func BenchmarkAdapterBrowserHeaders(b *testing.B) {
	benchKeepAlive(b, []byte("GET /?q=x HTTP/1.1\r\nHost: x\r\n"+
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0\r\n"+
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"+
		"Accept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n"+
		"Connection: keep-alive\r\nCookie: session=0123456789abcdef\r\n"+
		"Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n"+
		"Sec-Fetch-Site: none\r\nSec-Fetch-User: ?1\r\nPriority: u=0, i\r\n\r\n"))
}

// benchKeepAlive sends req over one keep-alive connection b.N times, one at a time.
func benchKeepAlive(b *testing.B, req []byte) {
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
