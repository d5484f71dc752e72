package lb

// firstLB chooses the first eligible server in configuration order (HAProxy's
// "first"): the others take traffic only when the ones before them cannot.
type firstLB struct {
	s set
}

var _ Balancer = (*firstLB)(nil)

func newFirst(s set) *firstLB { return &firstLB{s: s} }

// Pick returns the first eligible server.
func (b *firstLB) Pick(r *Request) int {
	for _, i := range b.s.idx {
		if r.Eligible(i) {
			return i
		}
	}
	return -1
}
