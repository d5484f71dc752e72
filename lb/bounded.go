package lb

// bound is the bounded-load rule of consistent hashing with bounded loads
// (Mirrokni, Thorup, Zadimoghaddam 2018): with ε > 0, a server may take a new
// request only while its in-flight count is below
// ceil((1+ε) × (in-flight over the eligible servers + 1) / eligible servers).
type bound struct {
	eps   float64 // 0: off
	loads *Loads
}

// capFor returns the cap for this pick over the members of s, and false when
// the rule is off. It costs one pass over the members.
func (b bound) capFor(s set, r *Request) (int64, bool) {
	if b.eps <= 0 {
		return 0, false
	}
	var total int64
	n := 0
	for _, i := range s.idx {
		if r.Eligible(i) {
			total += b.loads.Get(i)
			n++
		}
	}
	if n == 0 {
		return 0, true
	}
	c := (1 + b.eps) * float64(total+1) / float64(n)
	ic := int64(c)
	if float64(ic) < c {
		ic++
	}
	return ic, true
}

// walkLimit is how many ring points or table entries a keyed pick walks past
// before it gives up on the key's order and scans the members (when most
// servers are not eligible): 4 per member, so a walk meets nearly every member.
func walkLimit(members int) int { return 4*members + 16 }

// scan returns the first eligible member at or after member k that is under
// the cap c (when bounded), or else the first eligible one, or -1.
func (b bound) scan(s set, r *Request, k int, c int64, bounded bool) int {
	n := len(s.idx)
	first := -1
	for j := range n {
		i := s.idx[(k+j)%n]
		if !r.Eligible(i) {
			continue
		}
		if !bounded || b.loads.Get(i) < c {
			return i
		}
		if first < 0 {
			first = i
		}
	}
	return first
}
