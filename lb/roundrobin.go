package lb

// roundRobinLB hands out its servers in turn, ignoring weights. Each loop
// walks the list with its own cursor, so loops share nothing.
type roundRobinLB struct {
	s       set
	cursor  []loopCursor // index = loop; each owned by its loop
	members uint64       // bit i for each member i < 64
}

var _ Balancer = (*roundRobinLB)(nil)

func newRoundRobin(s set, o *Options) *roundRobinLB {
	b := &roundRobinLB{s: s, cursor: make([]loopCursor, o.Loops)}
	for _, i := range s.idx {
		if i < 64 {
			b.members |= 1 << i
		}
	}
	return b
}

// Pick returns the next eligible server after the loop's previous choice. A
// retry (a request that already tried one of these servers, as Tried tells)
// takes the next eligible server without moving the cursor: the turn the
// failed server took stays spent, so a dead server costs each new request its
// share (1/n), not every request that follows its turn (with [dead, a] each
// request tried dead first when the retry moved the cursor too). Servers of
// another set tried before (the primaries, for the backups' balancer) do not
// make a pick a retry: the backups still take turns when every primary failed.
func (b *roundRobinLB) Pick(r *Request) int {
	c := &b.cursor[loopIndex(r.Loop, len(b.cursor))]
	n := uint64(len(b.s.idx))
	retry := r.Tried&b.members != 0
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
