package lb

import "net/netip"

// HashBytes returns the 64-bit key of b: FNV-1a followed by a 64-bit
// finalizer (the one of SplitMix64), so that keys differing in one byte land
// far apart. Stable across processes and versions of gale: the ring and the
// Maglev table depend on it.
func HashBytes(b []byte) uint64 {
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return Mix(h)
}

// HashParts returns HashBytes of the parts one after the other, without
// joining them.
func HashParts(parts ...[]byte) uint64 {
	h := uint64(fnvOffset)
	for _, b := range parts {
		for _, c := range b {
			h ^= uint64(c)
			h *= fnvPrime
		}
	}
	return Mix(h)
}

// HashString is HashBytes of s.
func HashString(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return Mix(h)
}

// HashAddr returns the key of a client address: the 16 bytes of its IPv6 form
// (an IPv4 address and its IPv4-mapped form hash alike). The port is not part
// of it.
func HashAddr(a netip.Addr) uint64 {
	b := a.As16()
	return HashBytes(b[:])
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	golden    = 0x9e3779b97f4a7c15
)

// Mix is the SplitMix64 finalizer: a bijection on 64-bit values that spreads
// every input bit over the output.
func Mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// rng is one loop's SplitMix64 generator, padded to a cache line.
type rng struct {
	state uint64
	_     [56]byte
}

func (g *rng) next() uint64 {
	g.state += golden
	return Mix(g.state)
}

// below returns a value in [0, n) (multiply-shift; the bias is below 2^-32
// for the n used here).
func (g *rng) below(n int) int {
	return int((g.next() >> 32) * uint64(n) >> 32)
}

func newRNGs(loops int, seed uint64) []rng {
	g := make([]rng, loops)
	for i := range g {
		g[i].state = Mix(seed + uint64(i)*golden + 1)
	}
	return g
}

// cumulative returns the running sums of the weights of s.
func cumulative(s set) []int {
	c := make([]int, len(s.weight))
	t := 0
	for k, w := range s.weight {
		t += w
		c[k] = t
	}
	return c
}

// searchCum returns the member whose cumulative range holds x (0 <= x < total).
func searchCum(cum []int, x int) int {
	lo, hi := 0, len(cum)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cum[m] <= x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
