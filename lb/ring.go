package lb

import (
	"slices"
	"strconv"
	"time"
)

// ringLB is a consistent hash ring: every server owns VNodes × weight points,
// placed by hashing its ID and the point's number; a key goes to the owner of
// the first point clockwise after the nearest of ringProbes hashes of it. Removing a server
// moves only the keys it owned. When the owner is not eligible (or, with
// bounded load, is at its cap) the walk goes on clockwise to the next owner
// that is. Immutable, so loops share it freely.
type ringLB struct {
	s      set
	points []ringPoint // sorted by hash
	hashes []uint64    // points[j].hash, packed for the searches
	lut    []uint32    // lut[b]: first point whose hash's top bits are >= b; len 2^bits + 1
	shift  uint        // 64 - bits
	bound  bound
}

// ringPoint is one virtual node.
// MaxRingPoints bounds the points of one ring (vnodes × the sum of the
// weights): 1<<20 points take 16 MiB with their index.
const MaxRingPoints = 1 << 20

// ringProbes is how many hashes of a key the ring tries (multi-probe
// consistent hashing, Appleton and O'Reilly 2015): the key starts at the point
// nearest after any of them. With 150 points per server one probe leaves
// servers up to ±17% off an even share (arc lengths vary as 1/√150); eight
// bring that within ±5% at the cost of eight binary searches. It keeps the
// ring's consistency: removing a server moves only the keys it held, since
// for every other key the winning probe's distance is unchanged and the
// others' can only grow.
const ringProbes = 8

type ringPoint struct {
	hash   uint64
	member int32
}

var (
	_ Balancer = (*ringLB)(nil)
	_ Keyed    = (*ringLB)(nil)
	_ Tracker  = (*ringLB)(nil)
)

func newRing(s set, o *Options) *ringLB {
	b := &ringLB{s: s, bound: bound{eps: o.BoundedLoad, loads: o.Loads}}
	buf := make([]byte, 0, 64)
	// Large weights scale the points down so that the ring stays within
	// MaxRingPoints; shares keep their proportions.
	scale := min(1, float64(MaxRingPoints)/(float64(o.VNodes)*float64(s.total)))
	for k, id := range s.ids {
		for v := range max(1, int(float64(o.VNodes*s.weight[k])*scale)) {
			buf = append(append(append(buf[:0], id...), '#'), strconv.Itoa(v)...)
			b.points = append(b.points, ringPoint{hash: HashBytes(buf), member: int32(k)})
		}
	}
	slices.SortFunc(b.points, func(x, y ringPoint) int {
		switch {
		case x.hash < y.hash:
			return -1
		case x.hash > y.hash:
			return 1
		}
		return int(x.member) - int(y.member)
	})
	b.hashes = make([]uint64, len(b.points))
	for j, pt := range b.points {
		b.hashes[j] = pt.hash
	}
	// A bucket index over the top bits of the hash (about one point per
	// bucket) narrows each search to a bucket's few points.
	bits := uint(1)
	for 1<<bits < len(b.points) {
		bits++
	}
	b.shift = 64 - bits
	b.lut = make([]uint32, 1<<bits+1)
	j := 0
	for bk := range b.lut {
		for j < len(b.hashes) && b.hashes[j]>>b.shift < uint64(bk) {
			j++
		}
		b.lut[bk] = uint32(j)
	}
	return b
}

// UsesKey reports that hash reads Request.Key.
func (b *ringLB) UsesKey() bool { return true }

// Pick walks clockwise from the key to the first eligible owner under the cap.
func (b *ringLB) Pick(r *Request) int {
	p := b.points
	j := b.probe(r.Key)
	c, bounded := b.bound.capFor(b.s, r)
	first := -1
	for range min(len(p), walkLimit(len(b.s.idx))) {
		if j == len(p) {
			j = 0
		}
		k := p[j].member
		j++
		i := b.s.idx[k]
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

// probe returns the index of the point the key starts its walk at: of ringProbes
// hashes of the key, the one closest to the point after it, and that point.
func (b *ringLB) probe(key uint64) int {
	p := b.hashes
	best, bestDist := 0, uint64(0)
	for q := range ringProbes {
		h := Mix(key + uint64(q)*golden)
		bk := h >> b.shift
		lo, hi := int(b.lut[bk]), int(b.lut[bk+1])
		j := lo + searchRing(p[lo:hi], h)
		pt := p[0]
		if j < len(p) {
			pt = p[j]
		} else {
			j = 0
		}
		if d := pt - h; q == 0 || d < bestDist {
			best, bestDist = j, d
		}
	}
	return best
}

// searchRing returns the index of the first hash in p at or after h (len(p)
// when there is none).
func searchRing(p []uint64, h uint64) int {
	// Branch-free lower bound: the halving step compiles to a conditional
	// move, so random keys cost no mispredicted branches.
	base, n := 0, len(p)
	if n == 0 {
		return 0
	}
	for n > 1 {
		half := n >> 1
		if p[base+half] < h {
			base += half
		}
		n -= half
	}
	if p[base] < h {
		base++
	}
	return base
}

// Start counts a request in flight (read by the bounded-load rule).
func (b *ringLB) Start(i int) { b.bound.loads.Inc(i) }

// Done counts it ended.
func (b *ringLB) Done(i int, _ time.Duration, _ bool) { b.bound.loads.Dec(i) }

// tracks reports that the in-flight counts matter: with a bounded load only.
func (b *ringLB) tracks() bool { return b.bound.eps > 0 }
