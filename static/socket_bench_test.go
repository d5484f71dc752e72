package static

import (
	"bytes"
	"context"
	"net"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
)

// BenchmarkSocketStatic1k serves a 1 KiB file through the HTTP/1.1 Ctx on a real
// loopback connection, 64 pipelined requests per write, so allocs/op is what the
// server and the static handler spend per request (the client does not allocate).
func BenchmarkSocketStatic1k(b *testing.B) {
	root := b.TempDir()
	writeTree(b, root, map[string]string{"1k.txt": bigContent(1024)})
	h, err := New(Options{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	s, err := server.New(server.Options{Handler: h, Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	defer s.Shutdown(context.Background())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const batch = 64
	req := "GET /1k.txt HTTP/1.1\r\nHost: x\r\n\r\n"
	// One response's length: the head is fixed-width for a fixed file.
	c.Write([]byte(req))
	one := make([]byte, 64<<10)
	n := 0
	for !bytes.Contains(one[:n], []byte("\r\n\r\n")) || n < bytes.Index(one[:n], []byte("\r\n\r\n"))+4+1024 {
		k, err := c.Read(one[n:])
		if err != nil {
			b.Fatal(err)
		}
		n += k
	}
	testkit.Pipelined(b, c, req, n, batch)
}
