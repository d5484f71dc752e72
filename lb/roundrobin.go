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

// Pick returns the next eligible server after the loop's previous choice. A
// retry (a request that already tried a server, all servers tracked in Tried)
// takes the next eligible server without moving the cursor: the turn the
// failed server took stays spent, so a dead server costs each new request its
// share (1/n), not every request that follows its turn (with [dead, a] each
// request tried dead first when the retry moved the cursor too).
func (b *roundRobinLB) Pick(r *Request) int {
	c := &b.cursor[loopIndex(r.Loop, len(b.cursor))]
	n := uint64(len(b.s.idx))
	retry := r.Tried != 0 && n <= 64
	for j := range n {
		k := (c.n + j) % n
		if i := b.s.idx[k]; r.Eligible(i) {
			if !retry {
				c.n += j + 1
			}
			return i
		}
	}
	return -1
}
