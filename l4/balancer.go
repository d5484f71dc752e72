package l4

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/lb"
)

// Balancer chooses among the servers of one upstream group. Implementations
// are safe for use by every loop at once. When it is also an lb.Tracker it
// hears of every connection's start and end; when lb.UsesKey reports true,
// Request.Key is the hash of the client's address (lb.HashAddr).
type Balancer interface {
	// Servers returns the group's servers. The caller does not modify the slice.
	Servers() []netip.AddrPort
	// Pick returns the index in Servers of the server a new connection tries
	// next (servers already tried for it are set in r.Tried, servers its
	// health group excludes in r.Exclude: r.Eligible tells both), or -1 when
	// none may take it.
	Pick(r *lb.Request) int
}

// Group is a Balancer over a list of servers with an lb method.
type Group struct {
	servers []netip.AddrPort // immutable
	lb.Balancer
	health   *health.Group   // nil without health state; set before the group is used
	failures []atomic.Uint64 // connect failures per server, index for index; any loop adds
}

var (
	_ Balancer   = (*Group)(nil)
	_ lb.Tracker = (*Group)(nil)
	_ lb.Keyed   = (*Group)(nil)
)

// NewGroup returns a group over servers (at least one), all of weight 1,
// balanced by method (an lb method name) with o.
func NewGroup(servers []netip.AddrPort, method string, o lb.Options) (*Group, error) {
	ls := make([]lb.Server, len(servers))
	for i, s := range servers {
		ls[i] = lb.Server{ID: s.String(), Weight: 1}
	}
	return NewGroupOf(servers, ls, method, o)
}

// NewGroupOf returns a group over servers whose weights and backup flags are
// in ls (same order and length).
func NewGroupOf(servers []netip.AddrPort, ls []lb.Server, method string, o lb.Options) (*Group, error) {
	b, err := lb.New(method, ls, o)
	if err != nil {
		return nil, err
	}
	return &Group{servers: servers, Balancer: b, failures: make([]atomic.Uint64, len(servers))}, nil
}

// SetHealth gives the group health state (active checks, outlier detection,
// breakers, limits), index for index with its servers. Call it before the group
// takes connections.
func (g *Group) SetHealth(h *health.Group) { g.health = h }

// Health returns the group's health state, or nil.
func (g *Group) Health() *health.Group { return g.health }

// ConnectFailures returns the failed connects to each server so far, index for
// index with Servers.
func (g *Group) ConnectFailures() []uint64 {
	out := make([]uint64, len(g.failures))
	for i := range g.failures {
		out[i] = g.failures[i].Load()
	}
	return out
}

// connectFailed counts a failed connect to server i.
func (g *Group) connectFailed(i int) { g.failures[i].Add(1) }

// Servers returns the servers.
func (g *Group) Servers() []netip.AddrPort { return g.servers }

// UsesKey reports whether the method reads the client's address.
func (g *Group) UsesKey() bool { return lb.UsesKey(g.Balancer) }

// Start tells a tracking method that a connection to server i began.
func (g *Group) Start(i int) {
	if t, ok := g.Balancer.(lb.Tracker); ok {
		t.Start(i)
	}
}

// Done tells it the connection ended; rtt is the time its connect took.
func (g *Group) Done(i int, rtt time.Duration, failed bool) {
	if t, ok := g.Balancer.(lb.Tracker); ok {
		t.Done(i, rtt, failed)
	}
}
