package lb

import (
	"math"
	"sync/atomic"
	"time"
)

// p2cLB is the power of two choices over peak-EWMA latency (the Finagle and
// Linkerd balancer): two distinct eligible servers are drawn at random and the
// one with the lower cost × (in-flight + 1) / weight is chosen. The cost is an
// exponentially weighted moving average of response times that jumps to any
// sample above it (peak) and decays towards newer, lower samples, and towards
// zero while no sample arrives, with time constant Options.Decay, so a server
// that was slow is tried again once its bad samples are old. A failed request
// counts as a sample of at least FailurePenalty. Costs and in-flight counts
// are shared atomics; the generators are per loop.
type p2cLB struct {
	s     set
	loads *Loads
	ewma  []ewmaCell // index = position in the caller's list (members only are used)
	w     []float64  // weight, same index
	tau   float64    // decay time constant in nanoseconds
	rng   []rng      // index = loop; each owned by its loop
	now   func() int64
	// clock is the latest Request.Now a pick saw, at millisecond steps (shared
	// by the loops; written at most about once a millisecond): Done uses it
	// instead of reading the clock, which costs ~370 ns on some machines.
	clock atomic.Int64
}

// clockSlack is the longest request whose end Done stamps with the clock the
// picks keep rather than the real one.
const clockSlack = 10 * time.Millisecond

// FailurePenalty is the least latency a failed request counts as in p2c_ewma.
const FailurePenalty = time.Second

// ewmaCell is one server's cost: nanoseconds as float64 bits, and the time of
// the last sample. The two words are updated without a lock; a racing update
// may be lost, which only makes one sample count less.
type ewmaCell struct {
	cost  atomic.Uint64
	stamp atomic.Int64
	// pending counts this process's requests in flight to the server (the
	// shared Loads may count other processes' too): with a cost of 0, the
	// server is unknown while none are pending and waited on while some are.
	pending atomic.Int64
	_       [40]byte
}

var (
	_ Balancer = (*p2cLB)(nil)
	_ Tracker  = (*p2cLB)(nil)
)

func newP2C(s set, o *Options) *p2cLB {
	n := o.Loads.Len() // indexes are the caller's, up to its list's length
	b := &p2cLB{
		s: s, loads: o.Loads, ewma: make([]ewmaCell, n), w: make([]float64, n), tau: float64(o.Decay),
		rng: newRNGs(o.Loops, o.Seed^0x5eed), now: func() int64 { return time.Now().UnixNano() },
	}
	for k, i := range s.idx {
		b.w[i] = float64(s.weight[k])
	}
	return b
}

// Pick draws two eligible servers and returns the cheaper.
func (b *p2cLB) Pick(r *Request) int {
	g := &b.rng[loopIndex(r.Loop, len(b.rng))]
	n := len(b.s.idx)
	a := b.draw(g, r, -1)
	if a < 0 || n == 1 {
		return a
	}
	c := b.draw(g, r, a)
	if c < 0 {
		return a
	}
	now := r.Now
	if now == 0 {
		now = b.now()
	} else if now-b.clock.Load() > int64(time.Millisecond) {
		b.clock.Store(now)
	}
	if b.score(c, now) < b.score(a, now) {
		return c
	}
	return a
}

// draw returns a random eligible server other than not, or -1.
func (b *p2cLB) draw(g *rng, r *Request, not int) int {
	n := len(b.s.idx)
	k := 0
	for range randomTries {
		k = g.below(n)
		if i := b.s.idx[k]; i != not && r.Eligible(i) {
			return i
		}
	}
	for j := range n {
		if i := b.s.idx[(k+j)%n]; i != not && r.Eligible(i) {
			return i
		}
	}
	return -1
}

// unknownCost is the score of a server that this process has requests in
// flight to but no latency for yet (no response since it started, or a cost
// decayed to nothing), before its in-flight count per weight is added: more
// than any measured cost, so such a server takes one request at a time until
// its first answer (Finagle's peak EWMA does the same). Without it the cost 0
// made the score 0 whatever the load, and a server that hangs from the start
// drew every request until its first one timed out. Requests of other
// processes (in the shared Loads) do not count here: a server this process has
// sent nothing to is unknown, and tried.
const unknownCost = float64(1 << 47) // ns: about 39 hours

// score is server i's cost at now × (in-flight + 1) / weight, or unknownCost
// + in-flight / weight when it has requests of this process in flight and no
// cost.
func (b *p2cLB) score(i int, now int64) float64 {
	load := float64(b.loads.Get(i))
	c := b.cost(i, now)
	if c == 0 && b.ewma[i].pending.Load() > 0 {
		return unknownCost + load/b.w[i]
	}
	return c * (load + 1) / b.w[i]
}

// cost returns server i's EWMA decayed to now (towards zero).
func (b *p2cLB) cost(i int, now int64) float64 {
	e := &b.ewma[i]
	c := math.Float64frombits(e.cost.Load())
	if dt := now - e.stamp.Load(); dt > 0 && c > 0 {
		c *= decay(float64(dt) / b.tau)
	}
	return c
}

// decay returns e^-x for x >= 0. Below 1/64, where most picks land (samples
// arrive far more often than the time constant), 1 - x + x²/2 - x³/6 is within 1e-8
// of it (the next term is x⁴/24) and much cheaper than math.Exp.
func decay(x float64) float64 {
	if x < 1.0/64 {
		return 1 - x*(1-x*(0.5-x/6))
	}
	return math.Exp(-x)
}

// Start counts a request in flight to server i.
func (b *p2cLB) Start(i int) {
	b.loads.Inc(i)
	b.ewma[i].pending.Add(1)
}

// Done counts it ended and folds its latency into server i's cost.
func (b *p2cLB) Done(i int, rtt time.Duration, failed bool) {
	b.loads.Dec(i)
	b.ewma[i].pending.Add(-1)
	if failed {
		rtt = max(rtt, FailurePenalty)
	}
	// The clock picks keep is at most a millisecond behind the pick that
	// started this request, so behind now by about rtt: close enough for a
	// short request, not for a long one, whose sample it stamped that much
	// early (decayed before any pick saw it; by e^-3 for 30 s). The clock is
	// read then, at a cost that is nothing beside such a request.
	now := b.clock.Load()
	if now == 0 || rtt > clockSlack {
		now = b.now()
	}
	e := &b.ewma[i]
	sample := float64(rtt)
	old := math.Float64frombits(e.cost.Load())
	next := sample
	if sample < old {
		w := decay(float64(max(now-e.stamp.Load(), 0)) / b.tau)
		next = old*w + sample*(1-w)
	}
	e.cost.Store(math.Float64bits(next))
	e.stamp.Store(now)
}
