package app

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
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

// TestTCPEngineIOURing: with engine io_uring a tcp entry runs and relays on
// that backend (it was refused, and auto ran epoll, while relays lost data there).
func TestTCPEngineIOURing(t *testing.T) {
	if _, err := engine.New(engine.Config{Workers: 1, Backend: engine.BackendIOURing}); err != nil {
		t.Skipf("no io_uring engine here: %v", err)
	}
	up := testkit.Serve(t, func(c *net.TCPConn) { io.Copy(c, c); c.CloseWrite() })
	a, _ := startApp(t, fmt.Sprintf("workers: 1\nengine: io_uring\ntcp:\n  - listen: [\"127.0.0.1:0\"]\n    upstreams: [%q]\n", up))
	if got := a.srv.Engine().Backend(); got != "io_uring" {
		t.Fatalf("backend %q, want io_uring", got)
	}
	c, err := net.Dial("tcp", a.tcpAddrs["127.0.0.1:0"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	c.Write([]byte("ping over io_uring"))
	c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "ping over io_uring" {
		t.Fatalf("relayed %q, %v", got, err)
	}
}
