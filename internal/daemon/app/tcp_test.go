package app

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestTCPEntry checks that a config with only a tcp entry serves it: bytes go to
// the upstream and back through the relay.
func TestTCPEntry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	}()
	a, addr := startApp(t, fmt.Sprintf("workers: 1\ntcp:\n  - listen: [\"127.0.0.1:0\"]\n    upstreams: [%q]\n", ln.Addr().String()))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("through the relay"))
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "through the relay" {
		t.Fatalf("got %q, %v", got, err)
	}
	if len(a.TCPProxies()) != 1 || a.TCPProxies()[0].Stats().Accepted != 1 {
		t.Fatalf("proxies %v", a.TCPProxies())
	}
}

// TestTCPNamedUpstream checks a tcp entry that relays to a named group of the
// top-level upstreams: its first server refuses (nothing listens there), so every
// connection, whichever server the balancer starts at, ends up at the second.
func TestTCPNamedUpstream(t *testing.T) {
	echo := testkit.Serve(t, func(c *net.TCPConn) {
		io.Copy(c, c)
		c.CloseWrite()
	})
	refusedAddr := testkit.FreePort(t) // nothing listens there
	a, addr := startApp(t, fmt.Sprintf(`workers: 1
upstreams:
  db: {servers: [%q, {address: %q, weight: 2}]}
tcp:
  - listen: ["127.0.0.1:0"]
    upstream: db
    timeouts: {connect: 2s, idle: 1m}
    max_conns: 10
`, refusedAddr, echo))
	for i := range 4 {
		c := testkit.Dial(t, addr)
		msg := fmt.Sprintf("connection %d", i)
		c.Write([]byte(msg))
		c.CloseWrite()
		if got, err := io.ReadAll(c); err != nil || string(got) != msg {
			t.Fatalf("connection %d: %q, %v", i, got, err)
		}
	}
	s := a.TCPProxies()[0].Stats()
	if s.Accepted != 4 || s.DialFailures == 0 || s.UpstreamFailed != 0 {
		t.Fatalf("stats %+v: want the refused server tried and every client relayed", s)
	}
}

// TestTCPEngineAuto: engine auto with tcp entries runs epoll (relays do not run
// on io_uring yet), whatever the kernel offers.
func TestTCPEngineAuto(t *testing.T) {
	a, _ := startApp(t, fmt.Sprintf("workers: 1\nengine: auto\ntcp:\n  - listen: [\"127.0.0.1:0\"]\n    upstreams: [%q]\n", testkit.FreePort(t)))
	if got := a.srv.Engine().Backend(); got != "epoll" && got != "portable" {
		t.Fatalf("backend %q, want epoll", got)
	}
}
