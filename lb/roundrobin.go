package lb

// roundRobinLB hands out its servers in turn, ignoring weights. Each loop
// walks the list with its own cursor, so loops share nothing.
type roundRobinLB struct {
	s      set
	cursor []loopCursor // index = loop; each owned by its loop
}

var _ Balancer = (*roundRobinLB)(nil)

func newRoundRobin(s set, o *Options) *roundRobinLB {
	return &roundRobinLB{s: s, cursor: make([]loopCursor, o.Loops)}
}

// Pick returns the next eligible server after the loop's previous choice.
func (b *roundRobinLB) Pick(r *Request) int {
	c := &b.cursor[loopIndex(r.Loop, len(b.cursor))]
	n := uint64(len(b.s.idx))
	for range n {
		k := c.n % n
		c.n++
		if i := b.s.idx[k]; r.Eligible(i) {
			return i
		}
	}
	return -1
}
