package health

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

func checkGroup(t *testing.T, l *logBuf, c CheckOptions, addrs ...netip.AddrPort) *Group {
	t.Helper()
	g, err := New(Options{Name: "chk", Servers: addrs, Check: &c, Logger: l.logger()})
	if err != nil {
		t.Fatal(err)
	}
	g.Start(startLoop(t))
	t.Cleanup(g.Stop)
	return g
}

// A tcp check takes a stopped server down after fall failures and brings it back
// after rise successes once it listens again; the other server stays up.
func TestCheckTCPRiseFall(t *testing.T) {
	a, b := testkit.NewOrigin(t), testkit.NewOrigin(t)
	var lb logBuf
	g := checkGroup(t, &lb, CheckOptions{Type: CheckTCP, Interval: 30 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 3}, a.Addr, b.Addr)
	testkit.WaitFor(t, "a first passed check", func() bool { return g.srv[0].checksOK.Load() > 0 })
	if down(g, 0) || down(g, 1) {
		t.Fatal("servers should start up")
	}
	a.Stop()
	start := g.srv[0].checksFailed.Load()
	testkit.WaitFor(t, "a down", func() bool { return down(g, 0) })
	if n := g.srv[0].checksFailed.Load() - start; n < 3 {
		t.Fatalf("down after %d failed checks, want fall=3", n)
	}
	if down(g, 1) {
		t.Fatal("the healthy server went down")
	}
	a.Restart()
	okBefore := g.srv[0].checksOK.Load()
	testkit.WaitFor(t, "a up again", func() bool { return !down(g, 0) })
	if n := g.srv[0].checksOK.Load() - okBefore; n < 2 {
		t.Fatalf("up after %d passed checks, want rise=2", n)
	}
	log := lb.String()
	if !strings.Contains(log, "health: server down") || !strings.Contains(log, "health: server up") {
		t.Fatalf("state changes not logged:\n%s", log)
	}
	if g.srv[0].transitions.Load() != 2 {
		t.Fatalf("transitions = %d, want 2", g.srv[0].transitions.Load())
	}
}

// A server that fails its first check goes down at once, as HAProxy marks a
// server "up, but will fall down at first failure" at start; fall counts only
// the failures of a server seen up. It took fall checks, so a dead server got
// fall × interval of requests at every start and at every reload that rebuilt
// its group.
func TestCheckDeadFromStartDownOnFirstCheck(t *testing.T) {
	a, b := testkit.NewOrigin(t), testkit.NewOrigin(t)
	a.Stop()
	var lb logBuf
	// A long interval, so that the next check is far behind the first.
	g := checkGroup(t, &lb, CheckOptions{Type: CheckTCP, Interval: 300 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 3}, a.Addr, b.Addr)
	testkit.WaitFor(t, "a down", func() bool { return down(g, 0) })
	if n := g.srv[0].checksFailed.Load(); n != 1 {
		t.Fatalf("a dead server went down after %d failed checks, want its first", n)
	}
	testkit.WaitFor(t, "b checked twice", func() bool { return g.srv[1].checksOK.Load() >= 2 })
	if down(g, 1) {
		t.Fatal("the live server went down")
	}
}

// An http check passes on a status inside the range with the expected body text
// and fails on a status outside it or a body without the text.
func TestCheckHTTPStatusAndBody(t *testing.T) {
	o := testkit.NewOrigin(t)
	o.SetBody("all good: ready")
	var lb logBuf
	g := checkGroup(t, &lb, CheckOptions{Type: CheckHTTP, Interval: 20 * time.Millisecond, Timeout: time.Second, Rise: 1, Fall: 1,
		HTTP: HTTPCheck{Path: "/healthz", StatusMin: 200, StatusMax: 299, BodyContains: "ready"}}, o.Addr)
	testkit.WaitFor(t, "a passed check", func() bool { return g.srv[0].checksOK.Load() > 0 })
	if down(g, 0) {
		t.Fatal("down with a passing origin")
	}
	o.Status.Store(503)
	testkit.WaitFor(t, "down on 503", func() bool { return down(g, 0) })
	if got := *g.srv[0].lastCheck.Load(); got != "status 503" {
		t.Fatalf("last check %q, want status 503", got)
	}
	o.Status.Store(200)
	testkit.WaitFor(t, "up on 200", func() bool { return !down(g, 0) })
	o.SetBody("not yet")
	testkit.WaitFor(t, "down on a body without the text", func() bool { return down(g, 0) })
	if got := *g.srv[0].lastCheck.Load(); !strings.Contains(got, "body") {
		t.Fatalf("last check %q, want the body reason", got)
	}
	o.Status.Store(302)
	o.SetBody("ready")
	time.Sleep(100 * time.Millisecond)
	if !down(g, 0) {
		t.Fatal("302 is outside the configured 200-299")
	}
}

// An http check against a server that accepts but never answers fails by its
// timeout.
func TestCheckHTTPTimeout(t *testing.T) {
	addr := testkit.Serve(t, func(c *net.TCPConn) { time.Sleep(2 * time.Second) })
	var lb logBuf
	g := checkGroup(t, &lb, CheckOptions{Type: CheckHTTP, Interval: 20 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1},
		netip.MustParseAddrPort(addr))
	testkit.WaitFor(t, "down by timeout", func() bool { return down(g, 0) })
	if got := *g.srv[0].lastCheck.Load(); got != "timeout" {
		t.Fatalf("last check %q, want timeout", got)
	}
}

// An http check reads the final response that follows a 1xx in the same read
// (103 Early Hints, then 200, then the close): the check passes. The checker
// used to stop after the 1xx and wait for more bytes, then took the close for
// "connection closed before a verdict" and the server went down.
func TestCheckHTTPInterimThenFinalInOneRead(t *testing.T) {
	for _, bodyText := range []string{"", "ready"} {
		t.Run("body_contains="+bodyText, func(t *testing.T) {
			addr := testkit.Serve(t, func(c *net.TCPConn) {
				buf := make([]byte, 4096)
				got := ""
				for !strings.Contains(got, "\r\n\r\n") {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					got += string(buf[:n])
				}
				c.Write([]byte("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" +
					"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nready"))
			})
			var lb logBuf
			g := checkGroup(t, &lb, CheckOptions{Type: CheckHTTP, Interval: 10 * time.Millisecond, Timeout: time.Second, Rise: 1, Fall: 1,
				HTTP: HTTPCheck{BodyContains: bodyText}}, netip.MustParseAddrPort(addr))
			testkit.WaitFor(t, "five checks", func() bool { return g.srv[0].checksOK.Load()+g.srv[0].checksFailed.Load() >= 5 })
			if n := g.srv[0].checksFailed.Load(); n > 0 || down(g, 0) {
				t.Fatalf("%d checks failed (last: %q), want none", n, *g.srv[0].lastCheck.Load())
			}
		})
	}
}

// Bad options are refused with a reason.
func TestCheckOptionsInvalid(t *testing.T) {
	for _, c := range []CheckOptions{
		{Type: "udp", Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1},
		{Type: CheckTCP, Interval: 0, Timeout: time.Second, Rise: 1, Fall: 1},
		{Type: CheckTCP, Interval: time.Second, Timeout: time.Second, Rise: 0, Fall: 1},
	} {
		if _, err := New(Options{Name: "x", Servers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}, Check: &c}); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
