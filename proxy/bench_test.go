package proxy

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
)

// BenchmarkProxyTiny measures the proxy's cost per request: requests
// pipelined over one client connection through a one-loop proxy to a gale
// origin answering a tiny body from memory over one pooled keep-alive
// connection. With -cpuprofile it shows where a proxied request spends its
// time (the origin's share is the server package's tiny path).
func BenchmarkProxyTiny(b *testing.B) { benchProxyTiny(b, 1, nil) }

// benchProxyTiny measures pipelined tiny requests through the proxy to origins
// tiny origins; mod may change the upstream's options.
func benchProxyTiny(b *testing.B, origins int, mod func(*UpstreamOptions)) {
	o := UpstreamOptions{
		Name:      "bench",
		Keepalive: Keepalive{Idle: 16, IdleTimeout: time.Minute, MaxRequests: 1 << 30},
		Timeouts:  Timeouts{Connect: 2 * time.Second, ResponseHeader: 10 * time.Second, Read: 10 * time.Second, Write: 10 * time.Second},
		Retries:   Retries{Tries: 2, ConnectFailure: true, ResetBeforeReply: true, Budget: 0.2},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for range origins {
		origin := servertest.Start(b, server.HandlerFunc(func(c *server.Ctx) {
			c.Respond(200, "text/plain", []byte("hello, world\n"))
		}), nil)
		o.Servers = append(o.Servers, Server{Addr: netip.MustParseAddrPort(origin.Addr()), Weight: 1})
	}
	if mod != nil {
		mod(&o)
	}
	u, err := NewUpstream(o, 1)
	if err != nil {
		b.Fatal(err)
	}
	p := servertest.Start(b, New(u, Route{}), nil)
	const req = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
	c := testkit.Dial(b, p.Addr())
	// One response's length: the Date header has a fixed width.
	c.Write([]byte(req + req))
	buf := make([]byte, 64<<10)
	n, total := 0, 0
	for n == 0 {
		k, err := c.Read(buf[total:])
		if err != nil {
			b.Fatal(err)
		}
		total += k
		if i := bytes.Index(buf[1:total], []byte("HTTP/1.1 ")); i >= 0 {
			n = i + 1
		}
	}
	if _, err := io.ReadFull(c, buf[total:2*n]); err != nil {
		b.Fatal(err)
	}
	testkit.Pipelined(b, c, req, n, 32)
}
