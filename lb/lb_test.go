package lb

import (
	"container/heap"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func servers(weights ...int) []Server {
	s := make([]Server, len(weights))
	for i, w := range weights {
		s[i] = Server{ID: fmt.Sprintf("10.1.0.%d:8080", i+1), Weight: w}
	}
	return s
}

func evenServers(n int) []Server {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return servers(w...)
}

func mustNew(t testing.TB, method string, s []Server, o Options) Balancer {
	t.Helper()
	b, err := New(method, s, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testKeys are the hashed keys "user-0", "user-1"... (distinct keys as a proxy
// would see them), computed once: the statistics tests look up 100,000 keys
// many times, and formatting them each time dominated the race-detector run.
var testKeys = func() []uint64 {
	k := make([]uint64, 100000)
	buf := []byte("user-")
	for i := range k {
		k[i] = HashBytes(strconv.AppendInt(buf[:5], int64(i), 10))
	}
	return k
}()

// keyOf is the hashed key number k.
func keyOf(k int) uint64 {
	if k < len(testKeys) {
		return testKeys[k]
	}
	return HashString("user-" + strconv.Itoa(k))
}

// TestWeightedShares: weights 5:1:1 give the first server 5/7 of 70,000 picks,
// within one percentage point, for every balancer that honours weights.
func TestWeightedShares(t *testing.T) {
	for _, m := range []string{WeightedRoundRobin, Random, IPHash, Hash, Maglev} {
		t.Run(m, func(t *testing.T) {
			b := mustNew(t, m, servers(5, 1, 1), Options{Loops: 2})
			const picks = 70000
			var n [3]int
			var r Request
			for k := range picks {
				r.Loop, r.Key = k%2, keyOf(k)
				n[b.Pick(&r)]++
			}
			for i, want := range []float64{5.0 / 7, 1.0 / 7, 1.0 / 7} {
				if got := float64(n[i]) / picks; math.Abs(got-want) > 0.01 {
					t.Errorf("server %d got %.4f of the picks (%d), want %.4f ± 0.01", i, got, n[i], want)
				}
			}
		})
	}
}

// TestSWRRInterleaving: smooth weighted round robin spreads a 5:1:1 cycle as
// nginx does, the same on every loop, cycle after cycle.
func TestSWRRInterleaving(t *testing.T) {
	b := mustNew(t, WeightedRoundRobin, servers(5, 1, 1), Options{Loops: 2})
	for loop := range 2 {
		var got strings.Builder
		r := Request{Loop: loop}
		for range 21 {
			got.WriteByte("abc"[b.Pick(&r)])
		}
		if want := strings.Repeat("aabacaa", 3); got.String() != want {
			t.Errorf("loop %d: sequence %s, want %s", loop, got.String(), want)
		}
	}
	// A skipped server leaves the others' interleaving smooth: 5:1 without c.
	b = mustNew(t, WeightedRoundRobin, servers(5, 1, 1), Options{})
	r := Request{Skip: func(i int) bool { return i == 2 }}
	var got strings.Builder
	for range 12 {
		got.WriteByte("abc"[b.Pick(&r)])
	}
	if want := "aaabaaaaabaa"; got.String() != want {
		t.Errorf("without c: %s, want %s", got.String(), want)
	}
}

// assignments returns the server of each of keys keys.
func assignments(b Balancer, keys int, ids []Server) []string {
	out := make([]string, keys)
	var r Request
	for k := range keys {
		r.Key = keyOf(k)
		out[k] = ids[b.Pick(&r)].ID
	}
	return out
}

// TestRemapOnRemoval: removing one of N servers moves at most 1/N + 2% of
// 100,000 keys, for the ring and Maglev; for the ring, only the removed
// server's keys move.
func TestRemapOnRemoval(t *testing.T) {
	const keys = 100000
	for _, m := range []string{Hash, Maglev} {
		for _, n := range []int{3, 5, 10, 20} {
			t.Run(fmt.Sprintf("%s/%d", m, n), func(t *testing.T) {
				all := evenServers(n)
				before := assignments(mustNew(t, m, all, Options{}), keys, all)
				gone := n / 2
				rest := append(append([]Server(nil), all[:gone]...), all[gone+1:]...)
				after := assignments(mustNew(t, m, rest, Options{}), keys, rest)
				moved, movedOther := 0, 0
				for k := range keys {
					if before[k] != after[k] {
						moved++
						if before[k] != all[gone].ID {
							movedOther++
						}
					}
				}
				limit := (1/float64(n) + 0.02) * keys
				if float64(moved) > limit {
					t.Errorf("%d of %d keys moved, more than 1/%d + 2%% (%.0f)", moved, keys, n, limit)
				}
				if m == Hash && movedOther != 0 {
					t.Errorf("%d keys of servers that stayed moved", movedOther)
				}
				t.Logf("moved %.2f%% (1/N = %.2f%%), of which %d from servers that stayed", 100*float64(moved)/keys, 100/float64(n), movedOther)
			})
		}
	}
}

// TestEvenLoad: with 150 points per server (and the default 65537-entry Maglev
// table) every server gets within ±10% of an even share of 100,000 keys.
func TestEvenLoad(t *testing.T) {
	const keys = 100000
	for _, m := range []string{Hash, Maglev} {
		for _, n := range []int{3, 5, 10, 20} {
			t.Run(fmt.Sprintf("%s/%d", m, n), func(t *testing.T) {
				s := evenServers(n)
				b := mustNew(t, m, s, Options{VNodes: 150})
				cnt := make([]int, n)
				var r Request
				for k := range keys {
					r.Key = keyOf(k)
					cnt[b.Pick(&r)]++
				}
				even := float64(keys) / float64(n)
				worst := 0.0
				for i, c := range cnt {
					d := float64(c)/even - 1
					worst = max(worst, math.Abs(d))
					if math.Abs(d) > 0.10 {
						t.Errorf("server %d has %d keys, %+.1f%% off the even %.0f", i, c, 100*d, even)
					}
				}
				t.Logf("worst deviation %.1f%%", 100*worst)
			})
		}
	}
}

// completion is one simulated request in flight.
type completion struct {
	at, started int64 // virtual nanoseconds
	server      int
}

type completions []completion

func (h completions) Len() int           { return len(h) }
func (h completions) Less(i, j int) bool { return h[i].at < h[j].at }
func (h completions) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *completions) Push(x any)        { *h = append(*h, x.(completion)) }
func (h *completions) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// simulate runs clients closed-loop clients against b on a virtual clock: each
// sends a request, waits service(server) and sends the next, until total
// requests were sent. check, if not nil, runs before each Start. It returns the
// requests each server got.
func simulate(b Balancer, n, clients, total int, service func(i int) time.Duration, keys func(k int) uint64,
	clock *int64, check func(i int)) []int {
	tr := b.(Tracker)
	got := make([]int, n)
	h := &completions{}
	var r Request
	send := func(k int) {
		if keys != nil {
			r.Key = keys(k)
		}
		i := b.Pick(&r)
		if check != nil {
			check(i)
		}
		tr.Start(i)
		got[i]++
		heap.Push(h, completion{at: *clock + int64(service(i)), started: *clock, server: i})
	}
	sent := 0
	for ; sent < clients; sent++ {
		send(sent)
	}
	for h.Len() > 0 {
		c := heap.Pop(h).(completion)
		*clock = c.at
		tr.Done(c.server, time.Duration(c.at-c.started), false)
		if sent < total {
			send(sent)
			sent++
		}
	}
	return got
}

// TestSlowServerAvoided: with one of three servers 10× slower, least_conn and
// p2c_ewma send it well under its even third (closed-loop load of 30 clients).
func TestSlowServerAvoided(t *testing.T) {
	for _, m := range []string{LeastConn, P2CEWMA, RoundRobin} {
		t.Run(m, func(t *testing.T) {
			var clock int64
			b := mustNew(t, m, evenServers(3), Options{})
			if p, ok := b.(*p2cLB); ok {
				p.now = func() int64 { return clock }
			}
			const total = 30000
			service := func(i int) time.Duration {
				if i == 0 {
					return 10 * time.Millisecond
				}
				return time.Millisecond
			}
			if m == RoundRobin {
				// The control: round robin does not look, so it must not pass.
				b = &trackedRR{b}
			}
			got := simulate(b, 3, 30, total, service, nil, &clock, nil)
			share := float64(got[0]) / total
			t.Logf("slow server got %.1f%% of %d requests (%v)", 100*share, total, got)
			if m == RoundRobin {
				if share < 0.30 {
					t.Errorf("round robin gave the slow server %.1f%%, expected its third", 100*share)
				}
				return
			}
			if share > 0.12 {
				t.Errorf("slow server got %.1f%% of the requests, want at most 12%% (even: 33%%)", 100*share)
			}
		})
	}
}

// trackedRR gives round robin a no-op Tracker for the simulation's control.
type trackedRR struct{ Balancer }

func (trackedRR) Start(int)                     {}
func (trackedRR) Done(int, time.Duration, bool) {}

// TestBoundedLoadCap: with ε = 0.25, hash and maglev never give a server a
// request that takes it above ceil(1.25 × mean in-flight), even when most keys
// are one hot key; without the bound the hot server does go above it.
func TestBoundedLoadCap(t *testing.T) {
	for _, m := range []string{Hash, Maglev} {
		for _, eps := range []float64{0.25, 0} {
			t.Run(fmt.Sprintf("%s/eps=%v", m, eps), func(t *testing.T) {
				const n = 8
				loads := NewLoads(n)
				b := mustNew(t, m, evenServers(n), Options{BoundedLoad: eps, Loads: loads})
				var clock int64
				over := 0
				check := func(i int) {
					var total int64
					for j := range n {
						total += loads.Get(j)
					}
					c := math.Ceil(1.25 * float64(total+1) / n)
					if float64(loads.Get(i)+1) > c {
						over++
					}
				}
				hot := func(k int) uint64 {
					if k%5 != 0 {
						return keyOf(0) // 80% of the requests share a key
					}
					return keyOf(k)
				}
				service := func(int) time.Duration { return time.Millisecond }
				got := simulate(b, n, 64, 20000, service, hot, &clock, check)
				t.Logf("requests per server %v, picks over the cap %d", got, over)
				if eps > 0 && over > 0 {
					t.Errorf("%d picks took a server above its cap", over)
				}
				if eps == 0 && over == 0 {
					t.Errorf("without the bound the hot key's server never went above the cap: the test cannot fail")
				}
			})
		}
	}
}

// TestEligibility: no balancer returns a tried or skipped server; each returns
// -1 when none is eligible, and the only eligible one when one is.
func TestEligibility(t *testing.T) {
	for _, m := range Methods {
		t.Run(m, func(t *testing.T) {
			b := mustNew(t, m, servers(3, 1, 2, 1, 1), Options{Loops: 3, BoundedLoad: 0.5})
			for k := range 2000 {
				r := Request{Loop: k % 3, Key: keyOf(k), Tried: uint64(k) & 0b10101}
				r.Skip = func(i int) bool { return i == 1 }
				i := b.Pick(&r)
				if i < 0 || i == 1 || r.Tried&(1<<i) != 0 {
					t.Fatalf("pick %d: got server %d (tried %05b, 1 skipped)", k, i, r.Tried)
				}
				r.Tried = 0b11101
				if i := b.Pick(&r); i != -1 {
					t.Fatalf("pick %d with nothing eligible: got %d, want -1", k, i)
				}
				r.Tried = 0b10111
				if i := b.Pick(&r); i != 3 {
					t.Fatalf("pick %d with only 3 eligible: got %d", k, i)
				}
			}
		})
	}
}

// TestBackups: backup servers take no request while a primary is eligible,
// and every request once none is.
func TestBackups(t *testing.T) {
	for _, m := range Methods {
		t.Run(m, func(t *testing.T) {
			s := servers(1, 1, 1, 1)
			s[1].Backup, s[3].Backup = true, true
			b := mustNew(t, m, s, Options{Loops: 2})
			down := map[int]bool{}
			r := Request{Skip: func(i int) bool { return down[i] }}
			for k := range 1000 {
				r.Key = keyOf(k)
				if i := b.Pick(&r); i != 0 && i != 2 {
					t.Fatalf("with both primaries up got server %d", i)
				}
			}
			down[0], down[2] = true, true
			seen := map[int]int{}
			for k := range 1000 {
				r.Key = keyOf(k)
				i := b.Pick(&r)
				if i != 1 && i != 3 {
					t.Fatalf("with both primaries down got server %d", i)
				}
				seen[i]++
			}
			if m != First && (seen[1] == 0 || seen[3] == 0) {
				t.Errorf("the backups did not share the load: %v", seen)
			}
			// Tracking reaches the balancer the server belongs to, backups included.
			if tr, ok := b.(Tracker); ok {
				for _, i := range []int{0, 1, 2, 3} {
					tr.Start(i)
					tr.Done(i, 5*time.Millisecond, i == 3)
				}
			}
		})
	}
	if _, err := New(RoundRobin, []Server{{ID: "a", Backup: true}}, Options{}); err == nil {
		t.Error("a group of backups only was accepted")
	}
}

// TestLeastConnWeighted: least_conn keeps in-flight counts proportional to
// weight, and counts what other loops started.
func TestLeastConnWeighted(t *testing.T) {
	b := mustNew(t, LeastConn, servers(3, 1), Options{Loops: 4})
	tr := b.(Tracker)
	for k := range 400 {
		r := Request{Loop: k % 4}
		tr.Start(b.Pick(&r))
	}
	ld := b.(*leastConnLB).loads
	if ld.Get(0) != 300 || ld.Get(1) != 100 {
		t.Errorf("in flight %d and %d, want 300 and 100", ld.Get(0), ld.Get(1))
	}
}

// TestLoadsOnRows: a table in shared memory sums every process's requests; a
// process that takes over the row of a dead one takes that row's requests
// out, and one that joins the row of a live one (a binary upgrade) leaves
// them.
func TestLoadsOnRows(t *testing.T) {
	mem := make([]byte, LoadsSize(3, 4)+8)
	mem = mem[8-int(uintptr(ptrOf(mem))%8):][:LoadsSize(3, 4)]
	live := map[int]bool{100: true, 101: true}
	alive := func(pid int) bool { return live[pid] }
	a, err := LoadsOn(mem, 3, 4, 0, 100, alive)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := LoadsOn(mem, 3, 4, 1, 101, alive)
	a.Inc(2)
	a.Inc(2)
	c.Inc(2)
	c.Inc(0)
	if a.Get(2) != 3 || c.Get(2) != 3 || c.Get(0) != 1 {
		t.Fatalf("totals %d %d %d, want 3 3 1", a.Get(2), c.Get(2), c.Get(0))
	}
	// An upgrade: process 200 joins row 1 while 101 still drains.
	up, _ := LoadsOn(mem, 3, 4, 1, 200, alive)
	if up.Get(2) != 3 || up.Get(0) != 1 {
		t.Errorf("joining a live process's row changed the totals: %d %d", up.Get(2), up.Get(0))
	}
	c.Dec(0)
	if up.Get(0) != 0 {
		t.Errorf("after the old process's request ended: %d, want 0", up.Get(0))
	}
	// Process 100 dies; its replacement attaches to row 0.
	live[100] = false
	a2, _ := LoadsOn(mem, 3, 4, 0, 300, alive)
	if a2.Get(2) != 1 {
		t.Errorf("after the takeover %d, want 1 (the dead process's 2 removed)", a2.Get(2))
	}
	if _, err := LoadsOn(mem[:10], 3, 4, 0, 1, alive); err == nil {
		t.Error("a short table was accepted")
	}
}

// TestRingBounded: a ring of heavy weights stays within MaxRingPoints and keeps
// the weights' proportions.
func TestRingBounded(t *testing.T) {
	b := mustNew(t, Hash, servers(1000, 1000, 500), Options{}).(*ringLB)
	if len(b.points) > MaxRingPoints {
		t.Fatalf("%d points, more than %d", len(b.points), MaxRingPoints)
	}
	var n [3]int
	var r Request
	for k := range 50000 {
		r.Key = keyOf(k)
		n[b.Pick(&r)]++
	}
	if got := float64(n[2]) / 50000; math.Abs(got-0.2) > 0.02 {
		t.Errorf("the half-weight server got %.3f of the keys, want 0.2 ± 0.02 (%v)", got, n)
	}
}

// TestNewErrors: bad options are refused with what is wrong.
func TestNewErrors(t *testing.T) {
	for _, c := range []struct {
		method string
		o      Options
		want   string
	}{
		{"leastconn", Options{}, "unknown balancing method"},
		{Maglev, Options{TableSize: 65536}, "must be a prime"},
		{Maglev, Options{TableSize: 2}, "smaller than"},
		{Hash, Options{VNodes: -1}, "vnodes"},
		{Hash, Options{BoundedLoad: -1}, "negative"},
	} {
		_, err := New(c.method, servers(1, 1, 1), c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%s, %+v) = %v, want an error containing %q", c.method, c.o, err, c.want)
		}
	}
}

// BenchmarkPick measures Pick for every method at 3, 100 and 1,000 servers,
// with nothing skipped, a distinct key per pick and the caller's time given
// (Request.Now), as the proxy and l4 give it.
func BenchmarkPick(b *testing.B) {
	for _, m := range Methods {
		for _, n := range []int{3, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", m, n), func(b *testing.B) {
				s := evenServers(n)
				for i := range s {
					s[i].Weight = 1 + i%3
				}
				bal := mustNew(b, m, s, Options{Loops: 1})
				keys := make([]uint64, 1024)
				for i := range keys {
					keys[i] = keyOf(i)
				}
				r := Request{Now: 1} // as the proxy gives its loop's time
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					r.Key = keys[i&1023]
					if bal.Pick(&r) < 0 {
						b.Fatal("no server")
					}
				}
			})
		}
	}
}

// TestLeastConnIdleTiesWeighted: with every server idle (each request ends
// before the next starts) least_conn's ties follow the weights, spread as
// smooth weighted round robin spreads them (1:3:1 gives b a b c b per cycle of
// five), as nginx's least_conn does; before, ties went in turn and weights
// counted only under concurrent load.
func TestLeastConnIdleTiesWeighted(t *testing.T) {
	b := mustNew(t, LeastConn, servers(1, 3, 1), Options{Loops: 2})
	tr := b.(Tracker)
	got := make([]int, 3)
	var seq []int
	for k := range 500 {
		r := Request{Loop: 0}
		i := b.Pick(&r)
		tr.Start(i)
		tr.Done(i, time.Millisecond, false)
		got[i]++
		if k < 5 {
			seq = append(seq, i)
		}
	}
	if got[0] != 100 || got[1] != 300 || got[2] != 100 {
		t.Errorf("idle picks %v, want [100 300 100]", got)
	}
	if !slices.Equal(seq, []int{1, 0, 1, 2, 1}) {
		t.Errorf("first cycle %v, want [1 0 1 2 1]", seq)
	}
	// With server 1 busy, the idle servers 0 and 2 take turns.
	tr.Start(1)
	seen := map[int]int{}
	for range 10 {
		r := Request{Loop: 1}
		seen[b.Pick(&r)]++
	}
	if seen[0] != 5 || seen[2] != 5 {
		t.Errorf("with server 1 busy, picks %v, want 5 each for 0 and 2", seen)
	}
}

// TestRoundRobinRetryKeepsTurns: with one dead server among n, round robin
// sends each new request to the dead one only on its turn (1/n of requests),
// and the retries go to the next server without moving the cursor, so the
// live servers still alternate.
func TestRoundRobinRetryKeepsTurns(t *testing.T) {
	for _, n := range []int{2, 3, 5} {
		b := mustNew(t, RoundRobin, evenServers(n), Options{Loops: 1})
		const reqs = 600
		firstDead, got := 0, make([]int, n)
		for range reqs {
			r := Request{}
			i := b.Pick(&r)
			if i == 0 { // server 0 is dead: the request retries
				firstDead++
				r.Tried |= 1
				i = b.Pick(&r)
				if i <= 0 {
					t.Fatalf("n=%d: retry picked %d", n, i)
				}
			}
			got[i]++
		}
		if firstDead != reqs/n {
			t.Errorf("n=%d: %d of %d requests tried the dead server first, want %d (its turns)", n, firstDead, reqs, reqs/n)
		}
		for i := 1; i < n; i++ {
			if got[i] < reqs/n {
				t.Errorf("n=%d: server %d served %d, want at least %d (%v)", n, i, got[i], reqs/n, got)
			}
		}
	}
}

// TestRoundRobinExcludeIsNotRetry: servers a caller excludes (health's down,
// ejected and drained servers, in Request.Exclude) are passed over and the
// others still take their turns; put in Tried they made every pick a retry,
// which leaves the cursor where it is, and one server got everything.
func TestRoundRobinExcludeIsNotRetry(t *testing.T) {
	b := mustNew(t, RoundRobin, evenServers(3), Options{Loops: 1})
	got := make([]int, 3)
	for range 300 {
		got[b.Pick(&Request{Exclude: 1 << 2})]++
	}
	if got[0] != 150 || got[1] != 150 || got[2] != 0 {
		t.Errorf("300 picks with server 2 excluded went %v, want [150 150 0]", got)
	}
}

// TestTracks: only balancers that read the in-flight counts report that they
// track, with or without backups, so that a caller may rebuild the others
// over new weights.
func TestTracks(t *testing.T) {
	withBackup := append(evenServers(2), Server{ID: "10.1.0.9:8080", Backup: true})
	for _, tc := range []struct {
		method string
		o      Options
		want   bool
	}{
		{WeightedRoundRobin, Options{}, false}, {Random, Options{}, false}, {IPHash, Options{}, false},
		{Hash, Options{}, false}, {Maglev, Options{}, false},
		{Hash, Options{BoundedLoad: 0.25}, true}, {Maglev, Options{BoundedLoad: 0.25}, true},
		{LeastConn, Options{}, true}, {P2CEWMA, Options{}, true},
	} {
		for _, s := range [][]Server{evenServers(3), withBackup} {
			if got := Tracks(mustNew(t, tc.method, s, tc.o)); got != tc.want {
				t.Errorf("%s (bounded load %v, %d servers): Tracks = %v, want %v", tc.method, tc.o.BoundedLoad, len(s), got, tc.want)
			}
		}
	}
}

// TestRoundRobinBackupsTakeTurns: when the primary failed for every request,
// the retries go to the backups in turn. The primary's bit in Tried made every
// pick of the backups' round robin a retry, which does not move its cursor, so
// the first backup took them all.
func TestRoundRobinBackupsTakeTurns(t *testing.T) {
	s := evenServers(3)
	s[1].Backup, s[2].Backup = true, true
	b := mustNew(t, RoundRobin, s, Options{Loops: 1})
	got := make([]int, 3)
	for range 100 {
		r := Request{}
		if i := b.Pick(&r); i != 0 {
			t.Fatalf("first pick %d, want the primary", i)
		}
		r.Tried |= 1 // the primary failed
		got[b.Pick(&r)]++
	}
	if got[1] != 50 || got[2] != 50 {
		t.Errorf("100 retries past a failed primary went %v, want 50 to each backup", got)
	}
}

// TestHashParts: hashing parts one after the other is hashing them joined.
func TestHashParts(t *testing.T) {
	for _, p := range [][]string{{}, {""}, {"/a"}, {"/a", "?", "b=1"}, {"", "x", ""}} {
		var joined []byte
		parts := make([][]byte, len(p))
		for i, s := range p {
			parts[i] = []byte(s)
			joined = append(joined, s...)
		}
		if HashParts(parts...) != HashBytes(joined) {
			t.Errorf("HashParts(%q) differs from HashBytes(%q)", p, joined)
		}
	}
}
