package lb

// swrrLB is smooth weighted round robin, the nginx algorithm: on every pick
// each eligible server gains its weight in credit, the one with the most
// credit is chosen and pays the sum of the eligible weights. Over a cycle of
// sum-of-weights picks each server is chosen weight times, spread out (5:1:1
// gives a a b a c a a). Each loop keeps its own credits, so loops share
// nothing; a pick costs one pass over the servers.
type swrrLB struct {
	s      set
	credit [][]int64 // index = loop, then member; each owned by its loop
}

var _ Balancer = (*swrrLB)(nil)

func newSWRR(s set, o *Options) *swrrLB {
	b := &swrrLB{s: s, credit: make([][]int64, o.Loops)}
	for l := range b.credit {
		// Pad each loop's slice so two loops' credits never share a cache line.
		b.credit[l] = make([]int64, len(s.idx), len(s.idx)+8)
	}
	return b
}

// Pick returns the eligible server with the most credit after this round's gain.
func (b *swrrLB) Pick(r *Request) int {
	credit := b.credit[loopIndex(r.Loop, len(b.credit))]
	best, total := -1, int64(0)
	for k, i := range b.s.idx {
		if !r.Eligible(i) {
			continue
		}
		w := int64(b.s.weight[k])
		credit[k] += w
		total += w
		if best < 0 || credit[k] > credit[best] {
			best = k
		}
	}
	if best < 0 {
		return -1
	}
	credit[best] -= total
	return b.s.idx[best]
}
