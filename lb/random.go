package lb

// randomLB chooses a server at random with probability proportional to its
// weight. Each loop has its own generator.
type randomLB struct {
	s   set
	cum []int // running sums of the weights
	rng []rng // index = loop; each owned by its loop
}

var _ Balancer = (*randomLB)(nil)

func newRandom(s set, o *Options) *randomLB {
	return &randomLB{s: s, cum: cumulative(s), rng: newRNGs(o.Loops, o.Seed)}
}

// randomTries is how many draws Pick makes before it scans for an eligible
// server (when most are not eligible).
const randomTries = 8

// Pick draws a server by weight; after randomTries ineligible draws it takes
// the first eligible server after the last draw.
func (b *randomLB) Pick(r *Request) int {
	g := &b.rng[loopIndex(r.Loop, len(b.rng))]
	k := 0
	for range randomTries {
		k = searchCum(b.cum, g.below(b.s.total))
		if i := b.s.idx[k]; r.Eligible(i) {
			return i
		}
	}
	return scanFrom(b.s, r, k)
}

// scanFrom returns the first eligible member at or after member k, wrapping.
func scanFrom(s set, r *Request, k int) int {
	n := len(s.idx)
	for j := range n {
		if i := s.idx[(k+j)%n]; r.Eligible(i) {
			return i
		}
	}
	return -1
}
