package l4

import (
	"net/netip"
	"sync/atomic"
)

// Weighted is a Balancer that hands out its servers in turn, each in proportion
// to its weight, interleaved (weights 3 and 1 give a, b, a, a rather than a, a,
// a, b). It is the balancer of a named upstream group until the shared
// load-balancing package takes over.
type Weighted struct {
	servers []netip.AddrPort // immutable, each server once
	slots   []uint16         // immutable: server indexes, one per unit of weight
	next    atomic.Uint32    // shared by all loops
}

var _ Balancer = (*Weighted)(nil)

// MaxWeight is the largest weight NewWeighted accepts (as config.Upstream).
const MaxWeight = 1000

// NewWeighted returns a weighted round-robin balancer over servers (at least
// one, at most 65536) with weights[i] the share of servers[i]; weights below 1
// count as 1 and above MaxWeight as MaxWeight.
func NewWeighted(servers []netip.AddrPort, weights []int) *Weighted {
	w := &Weighted{servers: servers}
	top := 1
	ws := make([]int, len(servers))
	for i := range servers {
		ws[i] = 1
		if i < len(weights) {
			ws[i] = min(max(weights[i], 1), MaxWeight)
		}
		top = max(top, ws[i])
	}
	for round := range top {
		for i, wi := range ws {
			if wi > round {
				w.slots = append(w.slots, uint16(i))
			}
		}
	}
	return w
}

// Servers returns the servers, each once.
func (w *Weighted) Servers() []netip.AddrPort { return w.servers }

// Pick returns the server of the next slot.
func (w *Weighted) Pick() int {
	return int(w.slots[(w.next.Add(1)-1)%uint32(len(w.slots))])
}
