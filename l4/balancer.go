package l4

import (
	"net/netip"
	"sync/atomic"
)

// Balancer chooses among the servers of one upstream group. Implementations are
// safe for use by every loop at once.
type Balancer interface {
	// Servers returns the group's servers. The caller does not modify the slice.
	Servers() []netip.AddrPort
	// Pick returns the index in Servers of the server a new connection tries
	// first; when it fails, the relay tries the following ones in order,
	// wrapping around, until each has been tried once.
	Pick() int
}

// RoundRobin is a Balancer that hands out its servers in turn.
type RoundRobin struct {
	servers []netip.AddrPort // immutable
	next    atomic.Uint32    // shared by all loops
}

var _ Balancer = (*RoundRobin)(nil)

// NewRoundRobin returns a round-robin balancer over servers (at least one).
func NewRoundRobin(servers []netip.AddrPort) *RoundRobin {
	return &RoundRobin{servers: servers}
}

// Servers returns the servers.
func (r *RoundRobin) Servers() []netip.AddrPort { return r.servers }

// Pick returns the next server in turn.
func (r *RoundRobin) Pick() int { return int((r.next.Add(1) - 1) % uint32(len(r.servers))) }
