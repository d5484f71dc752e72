package app

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// benchRoute sends b.N pipelined requests (batches of 64, one loopback
// connection, one loop) to an app running yaml, so that ns/op and
// allocs/op are what routing, the action and observability cost per
// request.
func benchRoute(b *testing.B, yaml string) {
	a, addr := runApp(&testing.T{}, yaml)
	defer a.Shutdown(b.Context())
	c := testkit.Dial(b, addr)
	c.SetDeadline(time.Time{})
	req := "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\n\r\n"
	c.Write([]byte(req + req))
	probe := make([]byte, 4096)
	n, _ := io.ReadAtLeast(c, probe, 1)
	for bytes.Count(probe[:n], []byte("HTTP/1.1 ")) < 2 {
		m, err := c.Read(probe[n:])
		if err != nil {
			b.Fatal(err)
		}
		n += m
	}
	testkit.Pipelined(b, c, req, n/2, 64)
}

const benchServer = `
servers:
  - listen: ["127.0.0.1:0"]
%s    routes:
      - match: { path: / }
        respond: { status: 200, body: "hello, world\n" }
`

// BenchmarkRouteObservability compares one request's cost without metrics,
// with metrics (admin listener on) and with metrics and a JSON access log.
func BenchmarkRouteObservability(b *testing.B) {
	dir := b.TempDir()
	for _, side := range []struct{ name, head, server string }{
		{"off", "workers: 1\n", ""},
		{"metrics", "workers: 1\nadmin: { listen: 127.0.0.1:0 }\n", ""},
		{"metrics+log", "workers: 1\nadmin: { listen: 127.0.0.1:0 }\n",
			"    access_log: { path: " + filepath.Join(dir, "access.log") + ", format: json }\n"},
	} {
		b.Run(side.name, func(b *testing.B) {
			benchRoute(b, side.head+fmtServer(side.server))
		})
	}
}

func fmtServer(extra string) string { return strings.Replace(benchServer, "%s", extra, 1) }
