package lb

import "time"

// leastConnLB chooses the eligible server with the fewest requests in flight
// relative to its weight (in-flight / weight, compared by cross-multiplying),
// counted in the shared Loads table: across every loop and, when the table is
// in shared memory, every process of the instance. Ties go round robin: each
// loop starts its scan one server further on every pick.
type leastConnLB struct {
	s      set
	loads  *Loads
	cursor []loopCursor // index = loop; each owned by its loop
}

var (
	_ Balancer = (*leastConnLB)(nil)
	_ Tracker  = (*leastConnLB)(nil)
)

func newLeastConn(s set, o *Options) *leastConnLB {
	return &leastConnLB{s: s, loads: o.Loads, cursor: make([]loopCursor, o.Loops)}
}

// Pick returns the least loaded eligible server.
func (b *leastConnLB) Pick(r *Request) int {
	c := &b.cursor[loopIndex(r.Loop, len(b.cursor))]
	n := len(b.s.idx)
	start := int(c.n % uint64(n))
	c.n++
	best, bestLoad, bestW := -1, int64(0), int64(1)
	for j := range n {
		k := start + j
		if k >= n {
			k -= n
		}
		i := b.s.idx[k]
		if !r.Eligible(i) {
			continue
		}
		load, w := b.loads.Get(i), int64(b.s.weight[k])
		if best < 0 || load*bestW < bestLoad*w {
			best, bestLoad, bestW = i, load, w
		}
	}
	return best
}

// Start counts a request in flight to server i.
func (b *leastConnLB) Start(i int) { b.loads.Inc(i) }

// Done counts it ended.
func (b *leastConnLB) Done(i int, _ time.Duration, _ bool) { b.loads.Dec(i) }
