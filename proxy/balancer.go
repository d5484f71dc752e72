package proxy

// Balancer chooses the server of each attempt. Pick runs on the loop whose ID it is
// given and must not block; it returns an index into the upstream's servers, or -1
// when no server may take the request (then the client gets 503). tried has bit i set
// for every server already tried for this request, so that a retry goes elsewhere
// where another server exists. Implementations keep per-loop state indexed by loop.
type Balancer interface {
	Pick(loop int, tried uint64) int
}

// RoundRobin is weighted round robin: each server appears weight times in a cycle,
// interleaved (smooth weighted round robin), and each loop walks the cycle with its
// own cursor, so loops share nothing.
type RoundRobin struct {
	cycle   []int     // server indexes in order; immutable
	servers int       // number of servers
	cursor  []rrState // index = loop ID; each owned by its loop
}

// rrState is one loop's cursor, padded so that loops do not share a cache line.
type rrState struct {
	next int
	_    [56]byte
}

var _ Balancer = (*RoundRobin)(nil)

// NewRoundRobin builds the cycle for servers, for an engine of loops event loops.
func NewRoundRobin(servers []Server, loops int) *RoundRobin {
	total := 0
	for _, s := range servers {
		total += max(s.Weight, 1)
	}
	// Smooth weighted round robin: each step every server gains its weight and the
	// one with the most credit is chosen and pays the total.
	credit := make([]int, len(servers))
	cycle := make([]int, 0, total)
	for range total {
		best := 0
		for i, s := range servers {
			credit[i] += max(s.Weight, 1)
			if credit[i] > credit[best] {
				best = i
			}
		}
		credit[best] -= total
		cycle = append(cycle, best)
	}
	return &RoundRobin{cycle: cycle, servers: len(servers), cursor: make([]rrState, max(loops, 1))}
}

// Pick returns the next server in the cycle not yet tried, or, when every server has
// been tried, the next one anyway (a retry on the only server is still a fresh
// connection).
func (r *RoundRobin) Pick(loop int, tried uint64) int {
	st := &r.cursor[loop%len(r.cursor)]
	all := r.servers >= 64 || tried&(1<<r.servers-1) == 1<<r.servers-1
	for range len(r.cycle) {
		i := r.cycle[st.next]
		st.next++
		if st.next == len(r.cycle) {
			st.next = 0
		}
		if all || tried&(1<<i) == 0 {
			return i
		}
	}
	return -1
}
