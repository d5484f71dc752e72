package l4

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/lb"
)

// backend is a test upstream that answers each connection with its name, then
// echoes; it can be stopped and started again on the same port.
type backend struct {
	t    *testing.T
	name string
	addr string
	ln   net.Listener
}

func newBackend(t *testing.T, name string) *backend {
	b := &backend{t: t, name: name, addr: "127.0.0.1:0"}
	b.start()
	b.addr = b.ln.Addr().String()
	t.Cleanup(b.stop)
	return b
}

func (b *backend) start() {
	b.ln = testkit.ServeOn(b.t, b.addr, func(c *net.TCPConn) {
		c.Write([]byte(b.name))
		io.Copy(c, c)
	})
}

func (b *backend) stop() { b.ln.Close() }

// healthGroup is a round-robin group over addrs with health state from o,
// started on px's first loop.
func healthGroup(t *testing.T, o health.Options, addrs ...string) *Group {
	t.Helper()
	var s []netip.AddrPort
	for _, a := range addrs {
		s = append(s, netip.MustParseAddrPort(a))
	}
	g, err := NewGroup(s, lb.RoundRobin, lb.Options{Loops: 8})
	if err != nil {
		t.Fatal(err)
	}
	o.Name, o.Servers = "tcp:test", s
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := health.New(o)
	if err != nil {
		t.Fatal(err)
	}
	g.SetHealth(h)
	return g
}

// firstByte relays one connection and returns the name of the backend that
// took it ("" when the relay reset or closed it first).
func firstByte(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Logf("dial: %v", err)
		return "" // reset before the dial returned
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Logf("read: %v", err)
		return ""
	}
	return string(buf)
}

func unavailable(g *Group, i int) bool { return g.Health().Unavailable()&(1<<i) != 0 }

// TestHealthCheckSkipsDownServer: an active tcp check takes a backend whose
// listener closed out of rotation, so relays go to the other one without a
// failed connect; when it listens again the checks bring it back and it takes
// relays again.
func TestHealthCheckSkipsDownServer(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	g := healthGroup(t, health.Options{Check: &health.CheckOptions{Type: health.CheckTCP,
		Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond, Rise: 2, Fall: 2}}, a.addr, b.addr)
	px, addr := startProxy(t, Options{Upstreams: g})
	g.Health().Start(px.eng.Loops()[0])
	t.Cleanup(g.Health().Stop)

	a.stop()
	testkit.WaitFor(t, "a down", func() bool { return unavailable(g, 0) })
	before := px.Stats().DialFailures
	for i := range 10 {
		if got := firstByte(t, addr); got != "b" {
			t.Fatalf("relay %d went to %q with a down; want b", i, got)
		}
	}
	if n := px.Stats().DialFailures - before; n != 0 {
		t.Fatalf("%d connects to the down server; want it skipped", n)
	}

	a.start()
	testkit.WaitFor(t, "a up again", func() bool { return !unavailable(g, 0) })
	seen := map[string]int{}
	for range 10 {
		seen[firstByte(t, addr)]++
	}
	if seen["a"] == 0 || seen["b"] == 0 || seen[""] != 0 {
		t.Fatalf("relays after a came back: %v; want both servers", seen)
	}
}

// TestRoundRobinAroundUnavailable: with one of three servers drained (or
// down, ejected, open), round_robin relays to the other two in turn. The
// unavailable server was passed to the balancer as one already tried, which
// round_robin takes for a retry and does not move its cursor for: every relay
// of a loop went to the same server.
func TestRoundRobinAroundUnavailable(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	g := healthGroup(t, health.Options{Limits: health.Limits{MaxConnections: 1000}}, a.addr, b.addr, c.addr)
	eng, err := engine.New(engine.Config{Workers: 1}) // one loop, one cursor
	if err != nil {
		t.Fatal(err)
	}
	px, addr := startProxyOn(t, eng, Options{Upstreams: g})
	g.Health().Start(px.eng.Loops()[0])
	t.Cleanup(g.Health().Stop)
	g.Health().Drain(2)
	seen := map[string]int{}
	for range 20 {
		seen[firstByte(t, addr)]++
	}
	if seen["a"] != 10 || seen["b"] != 10 {
		t.Fatalf("20 relays with c drained went %v, want 10 to a and 10 to b", seen)
	}
}

// resetter is a backend that accepts and resets at once.
func resetter(t *testing.T) string {
	return serve(t, func(c *net.TCPConn) { c.SetLinger(0) })
}

// TestOutlierEjectsResettingServer: a backend that accepts then resets fails
// the relays it takes; consecutive_gateway_failure ejects it, after which every
// relay goes to the good backend. A refused connect counts the same way.
func TestOutlierEjectsResettingServer(t *testing.T) {
	for _, tc := range []struct{ name, bad string }{
		{"reset", resetter(t)},
		{"refused", closedPort(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := newBackend(t, "g")
			g := healthGroup(t, health.Options{Outlier: &health.OutlierOptions{ConsecutiveGatewayFailure: 3,
				BaseEjectionTime: time.Hour, MaxEjectionTime: time.Hour, MaxEjectionPercent: 50}}, tc.bad, good.addr)
			px, addr := startProxy(t, Options{Upstreams: g})
			g.Health().Start(px.eng.Loops()[0])
			for i := 0; !unavailable(g, 0); i++ {
				if i == 20 {
					t.Fatalf("not ejected after %d relays: %+v", i, g.Health().Status().Servers[0])
				}
				firstByte(t, addr)
			}
			st := g.Health().Status().Servers[0]
			if !st.Ejected || st.Failures < 3 || st.Ejections != 1 {
				t.Fatalf("bad server %+v: want ejected after 3 failures", st)
			}
			failures := px.Stats().DialFailures
			for i := range 10 {
				if got := firstByte(t, addr); got != "g" {
					t.Fatalf("relay %d after the ejection went to %q; want g", i, got)
				}
			}
			if st2 := g.Health().Status().Servers[0]; st2.Requests != st.Requests || px.Stats().DialFailures != failures {
				t.Fatalf("the ejected server still took attempts: %+v", st2)
			}
			if tc.name == "refused" && g.ConnectFailures()[0] < 3 {
				t.Fatalf("connect failures of the refused server: %v", g.ConnectFailures())
			}
		})
	}
}

// TestBreakerOpensAndRecovers: with a breaker and a single server, a server
// that refuses opens the breaker; an open breaker resets clients without a
// connect; once the server listens again, a half-open probe closes it.
func TestBreakerOpensAndRecovers(t *testing.T) {
	a := newBackend(t, "a")
	a.stop()
	g := healthGroup(t, health.Options{Breaker: &health.BreakerOptions{Window: time.Hour, MinRequests: 3,
		FailureRatio: 0.5, OpenFor: 50 * time.Millisecond, HalfOpenProbes: 1}}, a.addr)
	px, addr := startProxy(t, Options{Upstreams: g})
	g.Health().Start(px.eng.Loops()[0])
	for range 3 {
		if got := firstByte(t, addr); got != "" {
			t.Fatalf("a stopped server answered %q", got)
		}
	}
	testkit.WaitFor(t, "the breaker to open", func() bool { return g.Health().Status().Servers[0].Breaker != "closed" })
	a.start()
	testkit.WaitFor(t, "a relay through the half-open breaker", func() bool { return firstByte(t, addr) == "a" })
	testkit.WaitFor(t, "the breaker to close", func() bool { return g.Health().Status().Servers[0].Breaker == "closed" })
	if s := px.Stats(); s.DialFailures < 3 || s.UpstreamFailed < 3 {
		t.Fatalf("stats %+v: want the refused connects counted", s)
	}
}

// TestBreakerOpenSkipsConnect: while the breaker is open (open_for long) no
// connect is made to the server: the client is reset at once.
func TestBreakerOpenSkipsConnect(t *testing.T) {
	bad := closedPort(t)
	g := healthGroup(t, health.Options{Breaker: &health.BreakerOptions{Window: time.Hour, MinRequests: 2,
		FailureRatio: 0.5, OpenFor: time.Hour, HalfOpenProbes: 1}}, bad)
	px, addr := startProxy(t, Options{Upstreams: g})
	g.Health().Start(px.eng.Loops()[0])
	for range 2 {
		firstByte(t, addr)
	}
	testkit.WaitFor(t, "the breaker to open", func() bool { return unavailable(g, 0) })
	failures := px.Stats().DialFailures
	for range 5 {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("with the breaker open: %v; want a reset", err)
		}
	}
	if n := px.Stats().DialFailures; n != failures {
		t.Fatalf("%d connects with the breaker open", n-failures)
	}
}

// TestLimitMaxConnections: a server at max_connections is skipped for new
// relays while its relay stays open.
func TestLimitMaxConnections(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	g := healthGroup(t, health.Options{Limits: health.Limits{MaxConnections: 1}}, a.addr, b.addr)
	_, addr := startProxy(t, Options{Upstreams: g})
	held := dial(t, addr)
	buf := make([]byte, 1)
	if _, err := io.ReadFull(held, buf); err != nil {
		t.Fatalf("first relay: %v", err)
	}
	full, other := 0, "b" // the server holding the first relay, and the other
	if buf[0] == 'b' {
		full, other = 1, "a"
	}
	for i := range 6 {
		// The other server has the same limit: its previous relay must have ended.
		testkit.WaitFor(t, "the other server's relay to end", func() bool { return g.Health().Status().Servers[1-full].Connections == 0 })
		if got := firstByte(t, addr); got != other {
			t.Fatalf("relay %d while %s is at its limit: %q; want %s", i, buf, got, other)
		}
	}
	if st := g.Health().Status().Servers[full]; st.Overflows == 0 || st.Connections != 1 {
		t.Fatalf("server %s %+v: want refusals counted and one connection", buf, st)
	}
	held.Close()
	testkit.WaitFor(t, "the held relay to end", func() bool { return g.Health().Status().Servers[full].Connections == 0 })
}

// TestClientResetIsNoVerdict: a relay that the client ends with a reset says
// nothing about the server (Cancelled, as docs/health.md has it). It counted as
// a success, which cleared the server's run of consecutive failures: a server
// that reset every other relay was never ejected while clients reset theirs.
func TestClientResetIsNoVerdict(t *testing.T) {
	flaky := serve(t, func(c *net.TCPConn) {
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		if b[0] == 'r' {
			c.SetLinger(0) // the server fails this relay
			return
		}
		io.Copy(io.Discard, c) // until the relay ends
	})
	// A spare server, never picked, lets outlier detection eject the flaky one
	// (it keeps the last available server).
	g := healthGroup(t, health.Options{Outlier: &health.OutlierOptions{ConsecutiveGatewayFailure: 2,
		BaseEjectionTime: time.Hour, MaxEjectionTime: time.Hour, MaxEjectionPercent: 50}}, flaky, closedPort(t))
	px, addr := startProxy(t, Options{Upstreams: firstOnly{g}})
	g.Health().Start(px.eng.Loops()[0])
	relay := func(first byte, clientReset bool) {
		t.Helper()
		start := px.Stats().Copied
		c := dial(t, addr)
		c.Write([]byte{first})
		if clientReset {
			testkit.WaitFor(t, "the byte to be relayed", func() bool { return px.Stats().Copied > start })
			c.SetLinger(0)
			c.Close()
		} else {
			io.ReadAll(c)
		}
		testkit.WaitFor(t, "the relay to end", func() bool { return px.Stats().Active == 0 })
	}
	relay('r', false) // a failure
	relay('k', true)  // the client resets: no verdict
	relay('r', false) // the second failure in a row
	if st := g.Health().Status().Servers[0]; !st.Ejected || st.Failures != 2 {
		t.Fatalf("server %+v: want ejected after two failures in a row", st)
	}
}

// firstOnly is a group that always picks its first server.
type firstOnly struct{ *Group }

func (firstOnly) Pick(r *lb.Request) int {
	if !r.Eligible(0) {
		return -1
	}
	return 0
}
