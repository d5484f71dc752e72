package lb

import "time"

// leastConnLB chooses the eligible server with the fewest requests in flight
// relative to its weight (in-flight / weight, compared by cross-multiplying),
// counted in the shared Loads table: across every loop and, when the table is
// in shared memory, every process of the instance. Ties go by smooth weighted
// round robin among the tied servers, as nginx does, so that weights still
// count when servers are idle (sequential requests, all at zero in flight).
type leastConnLB struct {
	s      set
	loads  *Loads
	credit [][]int64 // index = loop, then member: the tie-break's credits, each owned by its loop
}

var (
	_ Balancer = (*leastConnLB)(nil)
	_ Tracker  = (*leastConnLB)(nil)
)

func newLeastConn(s set, o *Options) *leastConnLB {
	b := &leastConnLB{s: s, loads: o.Loads, credit: make([][]int64, o.Loops)}
	for l := range b.credit {
		// Padded so that two loops' credits never share a cache line.
		b.credit[l] = make([]int64, len(s.idx), len(s.idx)+8)
	}
	return b
}

// Pick returns the least loaded eligible server. A first pass finds the least
// load per weight; when more than one server has it, a second pass runs a
// round of smooth weighted round robin over those (each gains its weight in
// credit, the richest is chosen and pays the tied servers' total).
func (b *leastConnLB) Pick(r *Request) int {
	best, bestLoad, bestW, ties := -1, int64(0), int64(1), 0
	for k, i := range b.s.idx {
		if !r.Eligible(i) {
			continue
		}
		load, w := b.loads.Get(i), int64(b.s.weight[k])
		switch {
		case best < 0 || load*bestW < bestLoad*w:
			best, bestLoad, bestW, ties = k, load, w, 1
		case load*bestW == bestLoad*w:
			ties++
		}
	}
	if best < 0 {
		return -1
	}
	if ties > 1 {
		credit := b.credit[loopIndex(r.Loop, len(b.credit))]
		chosen, total := -1, int64(0)
		for k, i := range b.s.idx[best:] {
			k += best
			if !r.Eligible(i) {
				continue
			}
			load, w := b.loads.Get(i), int64(b.s.weight[k])
			if load*bestW != bestLoad*w {
				continue
			}
			credit[k] += w
			total += w
			if chosen < 0 || credit[k] > credit[chosen] {
				chosen = k
			}
		}
		// Other loops may have moved the counts since the first pass, so that
		// none is tied any more: the first pass's choice stands then.
		if chosen >= 0 {
			credit[chosen] -= total
			best = chosen
		}
	}
	return b.s.idx[best]
}

// Start counts a request in flight to server i.
func (b *leastConnLB) Start(i int) { b.loads.Inc(i) }

// Done counts it ended.
func (b *leastConnLB) Done(i int, _ time.Duration, _ bool) { b.loads.Dec(i) }
