package engine

import (
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// onLoop runs f on l and waits for it.
func onLoop(t *testing.T, l *Loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	l.Post(func() { f(); close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not run a posted closure")
	}
}

// TestTimersStopResetMany arms many timers on one loop, stops some, resets others,
// and checks that exactly the armed ones fire, each once, no earlier than asked.
func TestTimersStopResetMany(t *testing.T) {
	e, _ := startEngine(t, &echo{}, 1)
	l := e.Loops()[0]
	const n = 100
	var mu sync.Mutex
	fired := map[int]int{}
	early := 0
	all := make(chan struct{})
	var timers []*Timer
	onLoop(t, l, func() {
		start := l.Now()
		for i := 0; i < n; i++ {
			d := time.Duration(10+i%7*10) * time.Millisecond
			timers = append(timers, l.AfterFunc(d, func() {
				mu.Lock()
				defer mu.Unlock()
				fired[i]++
				if l.Now().Sub(start) < d {
					early++
				}
			}))
		}
		for i := 0; i < n; i += 2 {
			if !timers[i].Stop() {
				t.Errorf("Stop of armed timer %d reported false", i)
			}
			if timers[i].Stop() {
				t.Errorf("second Stop of timer %d reported true", i)
			}
		}
		if !timers[1].Reset(150 * time.Millisecond) {
			t.Error("Reset of an armed timer reported false")
		}
		l.AfterFunc(300*time.Millisecond, func() { close(all) })
	})
	select {
	case <-all:
	case <-time.After(5 * time.Second):
		t.Fatal("the last timer never fired")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < n; i++ {
		if want := i % 2; fired[i] != want {
			t.Errorf("timer %d fired %d times, want %d", i, fired[i], want)
		}
	}
	if early != 0 {
		t.Errorf("%d timers fired before their deadline", early)
	}
	onLoop(t, l, func() {
		if timers[1].Stop() {
			t.Error("Stop after firing reported true")
		}
	})
}

// TestIdleLoopSleeps: a loop whose only timers are seconds away (a loop timer and a
// connection's timer) does not wake every tick. It counts loop iterations over a
// quarter of a second, in which a 10 ms wake-up would make about 25.
func TestIdleLoopSleeps(t *testing.T) {
	h := &echo{timeout: 5 * time.Second}
	e, addr := startEngine(t, h, 1)
	l := e.Loops()[0]
	testkit.Dial(t, addr) // a connection whose timer is armed 5 s ahead
	testkit.WaitFor(t, "open", func() bool { return h.opened.Load() == 1 })
	var before, after uint64
	onLoop(t, l, func() {
		l.AfterFunc(5*time.Second, func() {})
		before = l.iters
	})
	time.Sleep(250 * time.Millisecond) // let time pass; the loop should sleep through it
	onLoop(t, l, func() { after = l.iters })
	if woke := after - before; woke > 5 {
		t.Fatalf("the loop ran %d iterations in 250 ms with nothing due", woke)
	}
}

// spreadTimeouts is an echo handler whose n-th connection times out after a minute and
// n ticks, so that a thousand connections cover every tick of a wheel revolution.
type spreadTimeouts struct {
	echo
	n int // owned by the loop (the test runs one)
}

func (h *spreadTimeouts) OnOpen(c *Conn) {
	h.opened.Add(1)
	c.SetTimeout(time.Minute + time.Duration(h.n)*10*time.Millisecond)
	h.n++
}

// TestIdleLoopSleepsManyConns: a loop holding idle connections whose timeouts are a
// minute away, one for every tick of a revolution and more (idle keep-alive connections),
// sleeps too. Their timers sit in the wheel's far slots, not in the near slots the loop
// visits every tick; a single-level wheel woke every tick (about 25 times here).
func TestIdleLoopSleepsManyConns(t *testing.T) {
	const n = 1100
	h := &spreadTimeouts{}
	e, addr := startEngine(t, h, 1)
	l := e.Loops()[0]
	for range n {
		testkit.Dial(t, addr)
	}
	testkit.WaitFor(t, "open", func() bool { return h.opened.Load() == n })
	var before, after uint64
	onLoop(t, l, func() { before = l.iters })
	time.Sleep(250 * time.Millisecond)
	onLoop(t, l, func() { after = l.iters })
	if woke := after - before; woke > 5 {
		t.Fatalf("the loop ran %d iterations in 250 ms with %d connections timing out a minute away", woke, n)
	}
}
