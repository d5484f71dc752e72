package health

import (
	"net/netip"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/gale-server/gale/internal/testkit"
)

// Two groups sharing their checks (as two worker processes would, over one
// mapping): one runs the checks, the other follows its flags; when the owner
// stops, the other takes the checks over.
func TestSharedChecksOneChecker(t *testing.T) {
	o := testkit.NewOrigin(t)
	mem := make([]uint64, SharedSize(1)/8) // 8-byte aligned, as a mapping is
	sh1, err := SharedOn(unsafeBytes(mem), 1)
	if err != nil {
		t.Fatal(err)
	}
	sh2, _ := SharedOn(unsafeBytes(mem), 1)
	interval := 30 * time.Millisecond
	mk := func(sh *Shared, pid uint64, lb *logBuf) *Group {
		g, err := New(Options{Name: "sh", Servers: []netip.AddrPort{o.Addr}, Shared: sh, ProcessID: pid, Logger: lb.logger(),
			Check: &CheckOptions{Type: CheckTCP, Interval: interval, Timeout: time.Second, Rise: 1, Fall: 2}})
		if err != nil {
			t.Fatal(err)
		}
		g.Start(startLoop(t))
		return g
	}
	var l1, l2 logBuf
	g1 := mk(sh1, 1, &l1)
	testkit.WaitFor(t, "g1 to own the checks", func() bool { return g1.srv[0].checksOK.Load() > 2 })
	g2 := mk(sh2, 2, &l2)
	time.Sleep(5 * interval)
	if n := g2.srv[0].checksOK.Load() + g2.srv[0].checksFailed.Load(); n != 0 {
		t.Fatalf("the second process ran %d checks while the first owns them", n)
	}
	o.Stop()
	testkit.WaitFor(t, "both down", func() bool { return down(g1, 0) && down(g2, 0) })
	if !strings.Contains(l2.String(), "checked by another process") {
		t.Fatalf("the follower did not log the change:\n%s", l2.String())
	}
	o.Restart()
	testkit.WaitFor(t, "both up", func() bool { return !down(g1, 0) && !down(g2, 0) })
	g1.Stop()
	testkit.WaitFor(t, "g2 to take the checks over", func() bool { return g2.srv[0].checksOK.Load() > 2 })
	if !strings.Contains(l2.String(), "this process runs the group's checks") {
		t.Fatalf("takeover not logged:\n%s", l2.String())
	}
}

func unsafeBytes(words []uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
}

// A drain, an enable and a weight set in one process reach the other processes
// of the instance at their next round, with or without checks.
func TestSharedAdminChanges(t *testing.T) {
	mem := make([]uint64, SharedSize(2)/8)
	a := sharedGroup(t, mem, 1, Options{Name: "adm", Servers: addrs(2)})
	b := sharedGroup(t, mem, 2, Options{Name: "adm", Servers: addrs(2)})
	a.Drain(1)
	testkit.WaitFor(t, "the drain to reach the other process", func() bool { return down(b, 1) && b.Status().Servers[1].Drained })
	if err := b.SetWeight(0, 7); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the weight to reach the first process", func() bool { return a.Weight(0) == 7 && a.WeightGen() > 0 })
	b.Enable(1)
	testkit.WaitFor(t, "the enable to reach the first process", func() bool { return !down(a, 1) })
	if down(a, 0) || down(b, 0) {
		t.Fatal("server 0 was never drained")
	}
}

// A process that followed the owner's checks knows its servers' state: when it
// takes the checks over, fall applies to them, and one failed check does not
// take a server the owner saw up down (only a server nobody has checked goes
// down on its first failure).
func TestSharedTakeoverKeepsFall(t *testing.T) {
	o := testkit.NewOrigin(t)
	mem := make([]uint64, SharedSize(1)/8)
	interval := 100 * time.Millisecond
	opts := Options{Name: "tk", Servers: []netip.AddrPort{o.Addr},
		Check: &CheckOptions{Type: CheckTCP, Interval: interval, Timeout: time.Second, Rise: 1, Fall: 3}}
	g1 := sharedGroup(t, mem, 1, opts)
	testkit.WaitFor(t, "the first process to check", func() bool { return g1.srv[0].checksOK.Load() > 0 })
	g2 := sharedGroup(t, mem, 2, opts)
	testkit.WaitFor(t, "the second process to follow the first's checks", func() bool {
		g2.mu.Lock() // follow sets known under mu while another process owns the checks
		defer g2.mu.Unlock()
		return g2.srv[0].known
	})
	g1.Stop()
	o.Stop()
	testkit.WaitFor(t, "two failed checks in the second process", func() bool { return g2.srv[0].checksFailed.Load() >= 2 })
	if down(g2, 0) {
		t.Fatal("the server went down before fall=3 failed checks after a takeover")
	}
	testkit.WaitFor(t, "down after fall", func() bool { return down(g2, 0) })
}

// sharedGroup starts the group of opts for process pid over the shared mapping
// mem, as a worker process does.
func sharedGroup(t *testing.T, mem []uint64, pid uint64, opts Options) *Group {
	t.Helper()
	sh, err := SharedOn(unsafeBytes(mem), len(opts.Servers))
	if err != nil {
		t.Fatal(err)
	}
	var lb logBuf
	opts.Shared, opts.ProcessID, opts.Logger = sh, pid, lb.logger()
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	g.Start(startLoop(t))
	t.Cleanup(g.Stop)
	return g
}
