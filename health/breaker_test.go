package health

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for breakers.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The breaker opens on the failure ratio once min_requests outcomes are in the
// window, turns half-open after open_for, admits only half_open_probes, closes
// after that many successes and reopens on a failed probe.
func TestRatioBreakerTransitions(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var changes []BreakerChange
	b := NewRatioBreaker(BreakerOptions{Window: 10 * time.Second, MinRequests: 10, FailureRatio: 0.5, OpenFor: 5 * time.Second, HalfOpenProbes: 2},
		func(c BreakerChange) { changes = append(changes, c) })
	b.now = clk.now
	for range 4 {
		b.Record(epoch(b), Succeeded)
		b.Record(epoch(b), Failed)
	}
	if b.State() != Closed {
		t.Fatal("opened below min_requests")
	}
	b.Record(epoch(b), Succeeded)
	b.Record(epoch(b), Failed) // 10 outcomes, 5 failures: 50%
	if b.State() != Open || allowed(b) {
		t.Fatalf("state %v after 5/10 failures, want open and refusing", b.State())
	}
	if c := changes[0]; c.From != Closed || c.To != Open || c.Requests != 10 || c.Failures != 5 {
		t.Fatalf("transition %+v", c)
	}
	clk.add(4 * time.Second)
	if b.State() != Open {
		t.Fatal("half-open before open_for")
	}
	clk.add(time.Second)
	first, second, third := allowed(b), allowed(b), allowed(b)
	if !first || !second || third {
		t.Fatal("half-open should admit exactly 2 probes")
	}
	b.Record(epoch(b), Cancelled) // a probe without a verdict frees its slot
	if !allowed(b) {
		t.Fatal("a cancelled probe should free its slot")
	}
	b.Record(epoch(b), Succeeded)
	b.Record(epoch(b), Succeeded)
	if b.State() != Closed {
		t.Fatalf("state %v after 2 good probes, want closed", b.State())
	}
	// Old outcomes left the window: a fresh run must reach min_requests again.
	b.Record(epoch(b), Failed)
	if b.State() != Closed {
		t.Fatal("the window was not reset on close")
	}
	for range 9 {
		b.Record(epoch(b), Failed)
	}
	clk.add(5 * time.Second)
	if !allowed(b) {
		t.Fatal("no probe admitted")
	}
	b.Record(epoch(b), Failed)
	if b.State() != Open {
		t.Fatal("a failed probe should reopen")
	}
	var path []string
	for _, c := range changes {
		path = append(path, c.To.String())
	}
	if got := strings.Join(path, ","); got != "open,half-open,closed,open,half-open,open" {
		t.Fatalf("transitions %s", got)
	}
}

// Outcomes older than the window do not count.
func TestRatioBreakerWindowSlides(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	b := NewRatioBreaker(BreakerOptions{Window: time.Second, MinRequests: 4, FailureRatio: 0.75, OpenFor: time.Second, HalfOpenProbes: 1}, nil)
	b.now = clk.now
	b.Record(epoch(b), Failed)
	b.Record(epoch(b), Failed)
	clk.add(1500 * time.Millisecond)
	b.Record(epoch(b), Failed)
	b.Record(epoch(b), Succeeded)
	b.Record(epoch(b), Failed)
	if b.State() != Closed {
		t.Fatal("counted failures that left the window")
	}
	b.Record(epoch(b), Failed)
	if b.State() != Open {
		t.Fatal("3 of 4 in the window should open")
	}
}

// In a group, an open breaker makes its server unavailable, the transition is
// logged with its counts, and the server returns (half-open) after open_for on
// the home loop's timer.
func TestGroupBreaker(t *testing.T) {
	var lb logBuf
	g, err := New(Options{Name: "br", Servers: addrs(2), Logger: lb.logger(),
		Breaker: &BreakerOptions{Window: 10 * time.Second, MinRequests: 5, FailureRatio: 1, OpenFor: 100 * time.Millisecond, HalfOpenProbes: 1}})
	if err != nil {
		t.Fatal(err)
	}
	g.Start(startLoop(t))
	for range 5 {
		attempt(t, g, 0, 0)
	}
	if !down(g, 0) {
		t.Fatal("open breaker should make the server unavailable")
	}
	if v, _ := g.Admit(0, true); v != BreakerRefused {
		t.Fatalf("Admit on an open breaker = %v", v)
	}
	waitUntil(t, func() bool { return !down(g, 0) })
	if g.srv[0].breaker.State() != HalfOpen {
		t.Fatal("want half-open after open_for")
	}
	attempt(t, g, 0, 200)
	if g.srv[0].breaker.State() != Closed {
		t.Fatal("want closed after a good probe")
	}
	for _, want := range []string{"from=closed to=open requests=5 failures=5", "from=open to=half-open", "from=half-open to=closed requests=1"} {
		if !strings.Contains(lb.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, lb.String())
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// Limits refuse attempts beyond max_in_flight, and new connections beyond
// max_connections and max_pending (an idle pooled connection is still usable),
// and count each refusal.
func TestLimits(t *testing.T) {
	g, err := New(Options{Name: "lim", Servers: addrs(1), Limits: Limits{MaxConnections: 2, MaxPending: 1, MaxInFlight: 3}})
	if err != nil {
		t.Fatal(err)
	}
	g.ConnDialing(0)
	if v, _ := g.Admit(0, false); v != OverLimit {
		t.Fatalf("with a connect pending: %v, want OverLimit", v)
	}
	g.ConnOpened(0)
	g.ConnDialing(0)
	g.ConnOpened(0)
	if v, _ := g.Admit(0, false); v != OverLimit {
		t.Fatalf("at max_connections: %v, want OverLimit", v)
	}
	for range 3 {
		if v, _ := g.Admit(0, true); v != Admitted {
			t.Fatalf("on an idle connection: %v", v)
		}
	}
	if v, _ := g.Admit(0, true); v != OverLimit {
		t.Fatalf("at max_in_flight: %v", v)
	}
	g.Done(0, 200, Succeeded, 0)
	g.ConnClosed(0, true)
	if v, _ := g.Admit(0, false); v != Admitted {
		t.Fatalf("below every limit: %v", v)
	}
	if n := g.srv[0].overflows.Load(); n != 3 {
		t.Fatalf("overflows = %d, want 3", n)
	}
}

// epoch returns b's current ticket, the one an attempt admitted now gets.
func epoch(b *RatioBreaker) Ticket {
	_, t := b.load()
	return t
}

// allowed reports whether b admits an attempt now.
func allowed(b *RatioBreaker) bool {
	_, ok := b.Allow()
	return ok
}

// An attempt admitted before the breaker opened and ending after it turned
// half-open is not one of the probes: its success does not close the breaker
// (no probe had passed yet), its failure does not reopen it, and its
// cancellation does not free a probe's slot (which let more than
// half_open_probes attempts in at once). Such stale outcomes were counted as
// the probes', so a slow server's requests in flight when the breaker opened
// closed it again after open_for without any request being let through.
func TestRatioBreakerStaleOutcomesAreNotProbes(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	b := NewRatioBreaker(BreakerOptions{Window: 10 * time.Second, MinRequests: 4, FailureRatio: 0.5, OpenFor: time.Second, HalfOpenProbes: 1}, nil)
	b.now = clk.now
	var slow []Ticket // admitted while closed, still in flight
	for range 3 {
		tk, ok := b.Allow()
		if !ok {
			t.Fatal("closed breaker refused")
		}
		slow = append(slow, tk)
	}
	for range 4 {
		tk, _ := b.Allow()
		b.Record(tk, Failed)
	}
	if b.State() != Open {
		t.Fatal("want open after 4 failures")
	}
	clk.add(time.Second)
	probe, ok := b.Allow()
	if !ok || b.State() != HalfOpen {
		t.Fatal("want one probe admitted, half-open")
	}
	b.Record(slow[0], Cancelled)
	if allowed(b) {
		t.Fatal("a stale cancellation freed the probe's slot: two probes in flight")
	}
	b.Record(slow[1], Succeeded)
	if s := b.State(); s != HalfOpen {
		t.Fatalf("a stale success moved the breaker to %v before its probe ended", s)
	}
	b.Record(slow[2], Failed)
	if s := b.State(); s != HalfOpen {
		t.Fatalf("a stale failure moved the breaker to %v before its probe ended", s)
	}
	b.Record(probe, Succeeded)
	if s := b.State(); s != Closed {
		t.Fatalf("state %v after the probe passed, want closed", s)
	}
}
