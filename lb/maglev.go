package lb

import "time"

// maglevLB is Maglev hashing (Eisenbud et al., NSDI 2016): a lookup table of a
// prime number M of entries, filled by letting each server in turn claim the
// next free entry of its own permutation of the table (offset and skip derived
// from its ID), weight entries per turn. Every server ends with a share of the
// table proportional to its weight (to within one entry per turn), and
// removing a server moves little more than the keys it had. A key goes to
// table[key mod M]; when that server is not eligible (or, with bounded load,
// is at its cap) the following entries are tried in order. Immutable.
type maglevLB struct {
	s     set
	table []int32 // member per entry
	bound bound
}

var (
	_ Balancer = (*maglevLB)(nil)
	_ Keyed    = (*maglevLB)(nil)
	_ Tracker  = (*maglevLB)(nil)
)

func newMaglev(s set, o *Options) *maglevLB {
	m := o.TableSize
	b := &maglevLB{s: s, table: make([]int32, m), bound: bound{eps: o.BoundedLoad, loads: o.Loads}}
	for e := range b.table {
		b.table[e] = -1
	}
	n := len(s.idx)
	offset, skip, next := make([]uint64, n), make([]uint64, n), make([]uint64, n)
	for k, id := range s.ids {
		h := HashString(id)
		offset[k] = h % uint64(m)
		skip[k] = Mix(h^golden)%uint64(m-1) + 1
	}
	filled := 0
	for filled < m {
		for k := range n {
			for range s.weight[k] {
				var e uint64
				for {
					e = (offset[k] + next[k]*skip[k]) % uint64(m)
					next[k]++
					if b.table[e] < 0 {
						break
					}
				}
				b.table[e] = int32(k)
				if filled++; filled == m {
					return b
				}
			}
		}
	}
	return b
}

// UsesKey reports that maglev reads Request.Key.
func (b *maglevLB) UsesKey() bool { return true }

// Pick returns the key's entry's server, or the next entry's that may take it.
func (b *maglevLB) Pick(r *Request) int {
	t := b.table
	e := int(Mix(r.Key) % uint64(len(t)))
	c, bounded := b.bound.capFor(b.s, r)
	first := -1
	for range min(len(t), walkLimit(len(b.s.idx))) {
		i := b.s.idx[t[e]]
		if e++; e == len(t) {
			e = 0
		}
		if !r.Eligible(i) {
			continue
		}
		if !bounded || b.bound.loads.Get(i) < c {
			return i
		}
		if first < 0 {
			first = i
		}
	}
	if first >= 0 {
		return first
	}
	return b.bound.scan(b.s, r, int(r.Key%uint64(len(b.s.idx))), c, bounded)
}

// Start counts a request in flight (read by the bounded-load rule).
func (b *maglevLB) Start(i int) { b.bound.loads.Inc(i) }

// Done counts it ended.
func (b *maglevLB) Done(i int, _ time.Duration, _ bool) { b.bound.loads.Dec(i) }

// tracks reports that the in-flight counts matter: with a bounded load only.
func (b *maglevLB) tracks() bool { return b.bound.eps > 0 }
