package health

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

func addrs(n int) []netip.AddrPort {
	var out []netip.AddrPort
	for i := range n {
		out = append(out, netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", 20500+i)))
	}
	return out
}

func outlierGroup(t *testing.T, lb *logBuf, n int, o OutlierOptions) *Group {
	t.Helper()
	g, err := New(Options{Name: "od", Servers: addrs(n), Outlier: &o, Logger: lb.logger()})
	if err != nil {
		t.Fatal(err)
	}
	g.Start(startLoop(t))
	return g
}

// attempt runs one admitted attempt on server i with the given status (0: a
// failed exchange).
func attempt(t *testing.T, g *Group, i, status int) {
	t.Helper()
	v, tk := g.Admit(i, true)
	if v != Admitted {
		t.Fatalf("server %d not admitted: %v", i, v)
	}
	o := Succeeded
	if status == 0 || status >= 500 {
		o = Failed
	}
	g.Done(i, status, o, tk)
}

// consecutive_5xx 5xx responses eject a server, a success in between resets the
// count, and the ejection ends after base_ejection_time.
func TestOutlierConsecutive5xx(t *testing.T) {
	var lb logBuf
	g := outlierGroup(t, &lb, 3, OutlierOptions{Consecutive5xx: 5, BaseEjectionTime: 200 * time.Millisecond, MaxEjectionTime: time.Second, MaxEjectionPercent: 50})
	for range 4 {
		attempt(t, g, 0, 500)
	}
	attempt(t, g, 0, 200)
	for range 4 {
		attempt(t, g, 0, 500)
	}
	if down(g, 0) {
		t.Fatal("ejected although a success broke the run")
	}
	attempt(t, g, 0, 500)
	if !down(g, 0) || g.Unavailable()&1 == 0 {
		t.Fatal("not ejected after 5 consecutive 5xx")
	}
	start := time.Now()
	testkit.WaitFor(t, "return after the ejection", func() bool { return !down(g, 0) })
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("returned after %v, want about 200ms", d)
	}
	if !strings.Contains(lb.String(), "reason=consecutive_5xx count=5") {
		t.Fatalf("ejection not logged with its cause:\n%s", lb.String())
	}
	// The second ejection lasts twice the base.
	for range 5 {
		attempt(t, g, 0, 503)
	}
	if !strings.Contains(lb.String(), "for=400ms ejections=2") {
		t.Fatalf("second ejection not 2 × base:\n%s", lb.String())
	}
}

// consecutive_gateway_failure counts failed exchanges and 502-504, and a 500 ends
// the gateway run.
func TestOutlierGatewayFailure(t *testing.T) {
	var lb logBuf
	g := outlierGroup(t, &lb, 2, OutlierOptions{ConsecutiveGatewayFailure: 3, BaseEjectionTime: time.Second, MaxEjectionTime: time.Second, MaxEjectionPercent: 100})
	attempt(t, g, 1, 0)
	attempt(t, g, 1, 502)
	attempt(t, g, 1, 500)
	attempt(t, g, 1, 504)
	if down(g, 1) {
		t.Fatal("a 500 should break the gateway-failure run")
	}
	attempt(t, g, 1, 0)
	attempt(t, g, 1, 0)
	if !down(g, 1) {
		t.Fatal("not ejected after 3 consecutive gateway failures")
	}
}

// max_ejection_percent caps the ejected share (one server may always be
// ejected unless it is 0) and the last available server is never ejected.
func TestOutlierEjectionLimits(t *testing.T) {
	var lb logBuf
	g := outlierGroup(t, &lb, 4, OutlierOptions{Consecutive5xx: 1, BaseEjectionTime: time.Minute, MaxEjectionTime: time.Minute, MaxEjectionPercent: 50})
	for i := range 4 {
		attempt(t, g, i, 500)
	}
	if got := g.unavail.Load(); got != 0b0011 {
		t.Fatalf("ejected set %04b, want 0011 (50%% of 4)", got)
	}
	// The default 10% of three servers allows no whole server: one may still be
	// ejected, as in Envoy (before, the default ejected nothing below ten
	// servers), but not a second; 0% ejects none.
	var lb3 logBuf
	three := outlierGroup(t, &lb3, 3, OutlierOptions{Consecutive5xx: 1, BaseEjectionTime: time.Minute, MaxEjectionTime: time.Minute, MaxEjectionPercent: 10})
	for i := range 3 {
		attempt(t, three, i, 500)
	}
	if got := three.unavail.Load(); got != 0b001 {
		t.Fatalf("10%% of 3: ejected set %03b, want 001", got)
	}
	var lb0 logBuf
	none := outlierGroup(t, &lb0, 3, OutlierOptions{Consecutive5xx: 1, BaseEjectionTime: time.Minute, MaxEjectionTime: time.Minute, MaxEjectionPercent: 0})
	attempt(t, none, 0, 500)
	if got := none.unavail.Load(); got != 0 {
		t.Fatalf("0%%: ejected set %03b, want none", got)
	}
	var lb1 logBuf
	one := outlierGroup(t, &lb1, 1, OutlierOptions{Consecutive5xx: 1, BaseEjectionTime: time.Minute, MaxEjectionTime: time.Minute, MaxEjectionPercent: 100})
	attempt(t, one, 0, 500)
	if down(one, 0) {
		t.Fatal("the only server was ejected")
	}
	if !strings.Contains(lb1.String(), "not ejected") {
		t.Fatalf("refused ejection not logged:\n%s", lb1.String())
	}
}

// A returning server gets a growing share of picks over slow_start.
func TestOutlierGradualReturn(t *testing.T) {
	var lb logBuf
	g := outlierGroup(t, &lb, 2, OutlierOptions{Consecutive5xx: 1, BaseEjectionTime: 50 * time.Millisecond, MaxEjectionTime: time.Second, MaxEjectionPercent: 50, SlowStart: 2 * time.Second})
	attempt(t, g, 0, 500)
	testkit.WaitFor(t, "return", func() bool { return !down(g, 0) })
	excluded := 0
	for range 1000 {
		if g.Unavailable()&1 != 0 {
			excluded++
		}
	}
	if excluded < 700 {
		t.Fatalf("just returned: excluded on %d of 1000 calls, want most", excluded)
	}
	g.srv[0].rampFrom.Store(time.Now().Add(-3 * time.Second).UnixNano())
	if g.Unavailable()&1 != 0 || g.ramping.Load() != 0 {
		t.Fatal("still ramping after slow_start")
	}
}

// A returning server is left out of no pick when no other server may take it:
// with the other one drained, Unavailable never reports it during its
// slow_start.
func TestOutlierGradualReturnAlone(t *testing.T) {
	var lb logBuf
	g := outlierGroup(t, &lb, 2, OutlierOptions{Consecutive5xx: 1, BaseEjectionTime: 50 * time.Millisecond, MaxEjectionTime: time.Second, MaxEjectionPercent: 50, SlowStart: time.Minute})
	attempt(t, g, 0, 500)
	testkit.WaitFor(t, "return", func() bool { return !down(g, 0) })
	g.Drain(1)
	for k := range 1000 {
		if m := g.Unavailable(); m != 0b10 {
			t.Fatalf("call %d: unavailable %02b with server 1 drained and server 0 ramping, want 10", k, m)
		}
	}
}

// A server back from an ejection starts with no failures counted: the
// failures of requests it was sent before the ejection, ending while it was
// ejected, said nothing new, and they made one failure after the return
// eject it again, for twice as long.
func TestOutlierReturnStartsAfresh(t *testing.T) {
	var lb logBuf
	g := outlierGroup(t, &lb, 3, OutlierOptions{Consecutive5xx: 3, ConsecutiveGatewayFailure: 3, BaseEjectionTime: 100 * time.Millisecond,
		MaxEjectionTime: time.Second, MaxEjectionPercent: 50})
	var late []Ticket
	for range 2 { // in flight while the server is ejected
		v, tk := g.Admit(0, true)
		if v != Admitted {
			t.Fatal("not admitted")
		}
		late = append(late, tk)
	}
	for range 3 {
		attempt(t, g, 0, 502)
	}
	if !down(g, 0) {
		t.Fatal("not ejected after 3 consecutive failures")
	}
	for _, tk := range late {
		g.Done(0, 502, Failed, tk)
	}
	testkit.WaitFor(t, "return after the ejection", func() bool { return !down(g, 0) })
	attempt(t, g, 0, 502)
	if down(g, 0) {
		t.Fatal("one failure after the return ejected the server again")
	}
}
