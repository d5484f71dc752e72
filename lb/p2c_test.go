package lb

import (
	"testing"
	"time"
)

// TestP2CInFlightWithoutLatency: a p2c_ewma server that has requests in flight
// and no latency sample yet (it has not answered once since the balancer was
// built) is not cheaper than a server that answers in a millisecond. Its cost
// was 0, which made its score 0 whatever its load, so a server that hangs from
// the start took every request until its first one ended.
func TestP2CInFlightWithoutLatency(t *testing.T) {
	var clock int64 = 1e9
	b := mustNew(t, P2CEWMA, evenServers(2), Options{}).(*p2cLB)
	b.now = func() int64 { return clock }
	b.Start(0) // server 0 hangs: no Done
	b.Start(1)
	clock += int64(time.Millisecond)
	b.Done(1, time.Millisecond, false)
	hung := 0
	for range 100 {
		i := b.Pick(&Request{Now: clock})
		if i == 0 {
			hung++
		}
		b.Start(i)
		if i == 1 {
			b.Done(1, time.Millisecond, false)
		}
	}
	if hung > 0 {
		t.Errorf("the server that has not answered got %d of 100 more requests, want 0", hung)
	}

	// Servers without any sample and nothing in flight still take requests,
	// spread by their in-flight counts (the cold start).
	c := mustNew(t, P2CEWMA, evenServers(2), Options{}).(*p2cLB)
	c.now = func() int64 { return clock }
	got := [2]int{}
	for range 10 {
		i := c.Pick(&Request{Now: clock})
		got[i]++
		c.Start(i)
	}
	if got[0] != 5 || got[1] != 5 {
		t.Errorf("10 requests to two servers that have not answered yet went %v, want 5 each", got)
	}
}

// TestP2CUnknownServerOfOtherProcesses: requests other processes have in
// flight to a server (the shared load table) do not make it "waited on" in
// this one: a server this process has no latency for and nothing pending to is
// still tried, so it gets a latency here.
func TestP2CUnknownServerOfOtherProcesses(t *testing.T) {
	var clock int64 = 1e9
	loads := NewLoads(2)
	b := mustNew(t, P2CEWMA, evenServers(2), Options{Loads: loads}).(*p2cLB)
	b.now = func() int64 { return clock }
	loads.Inc(1) // another process's request to server 1
	b.Start(0)
	clock += int64(time.Millisecond)
	b.Done(0, time.Millisecond, false)
	if i := b.Pick(&Request{Now: clock}); i != 1 {
		t.Errorf("picked %d, want server 1, which this process has no latency for", i)
	}
}

// TestP2CSlowSampleStampedWhenItEnds: a long request's latency is stamped with
// the time it ended, not with the time of the last pick (the clock picks keep,
// which stands still while no request arrives): a server that just took 30 s
// costs about 30 s right after. Stamped 30 s early, the sample had decayed by
// e^-3 before any pick saw it, and at low traffic a slow server looked 20
// times faster than it was.
func TestP2CSlowSampleStampedWhenItEnds(t *testing.T) {
	var clock int64 = 1e12
	b := mustNew(t, P2CEWMA, evenServers(2), Options{}).(*p2cLB)
	b.now = func() int64 { return clock }
	i := b.Pick(&Request{Now: clock})
	b.Start(i)
	clock += int64(30 * time.Second)
	b.Done(i, 30*time.Second, false)
	if c := time.Duration(b.cost(i, clock)); c < 29*time.Second {
		t.Fatalf("cost %v right after a 30 s response, want about 30 s", c)
	}
}
