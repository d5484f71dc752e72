package l4

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/lb"
)

// startProxy runs a proxy with opt on a fresh two-loop engine and returns it
// with its address; both stop when the test ends.
func startProxy(t testing.TB, opt Options) (*Proxy, string) {
	t.Helper()
	// The backend is GALE_ENGINE's (epoll by default).
	eng, err := engine.New(engine.Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return startProxyOn(t, eng, opt)
}

// startProxyOn is startProxy on the engine eng, not started yet.
func startProxyOn(t testing.TB, eng *engine.Engine, opt Options) (*Proxy, string) {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	px, err := New(eng, opt)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := px.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runEngine(t, eng)
	return px, addr
}

// runEngine starts eng and shuts it down when the test ends, failing the test
// when connections are left open.
func runEngine(t testing.TB, eng *engine.Engine) {
	eng.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := eng.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v (relays left open)", err)
		}
	})
}

// group is a round-robin group over the given listeners' addresses.
func group(addrs ...string) Balancer {
	var s []netip.AddrPort
	for _, a := range addrs {
		s = append(s, netip.MustParseAddrPort(a))
	}
	g, err := NewGroup(s, lb.RoundRobin, lb.Options{Loops: 8})
	if err != nil {
		panic(err)
	}
	return g
}

// serve runs a test TCP server calling f for each connection (testkit.Serve).
func serve(t testing.TB, f func(c *net.TCPConn)) string { return testkit.Serve(t, f) }

// echo copies everything back, then half-closes.
func echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

// dial connects to addr with a 60 s deadline, closed when the test ends.
func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// closedPort returns an address on which nothing listens.
func closedPort(t *testing.T) string { return testkit.FreePort(t) }
