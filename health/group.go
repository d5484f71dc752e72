// Package health keeps the health of an upstream group's servers and answers one
// question for the proxy on every attempt: which servers may take a request now.
// Four sources feed it: active checks (tcp connect or an HTTP request on a timer,
// HAProxy rise/fall semantics), passive outlier detection (Envoy semantics:
// consecutive 5xx or gateway failures eject a server for a growing time), a
// circuit breaker per server (failure ratio over a sliding window), and the
// operator (drain, enable and weight through the admin API). Envoy-style limits
// per server (connections, connects in progress, requests in flight) refuse
// attempts beyond them.
//
// A Group is shared by every loop of one engine. The state the proxy reads on each
// attempt is one atomic word (Unavailable); counters are atomics; state changes
// (rare) are serialized by the group's mutex, logged and counted. Active checks and
// the timers that end an ejection or an open breaker run on one loop, the group's
// home loop (Start), so an instance runs one checker per group, never one per loop.
//
// See docs/health.md for the configuration and the exact semantics.
package health

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/engine"
)

// MaxServers is the most servers a group holds: the unavailable set is one word.
const MaxServers = 64

// Options configure a Group. A nil Check, Outlier or Breaker turns that source
// off; zero Limits are unlimited.
type Options struct {
	// Name is the upstream's name, for log lines and the admin API.
	Name string
	// Servers are the group's server addresses, in the proxy's index order.
	Servers []netip.AddrPort
	// Names, when not empty, are the names the servers were configured by (a host
	// name that resolved to the address); shown by the admin API.
	Names []string
	// Weights are the configured weights, index for index (missing ones are 1).
	Weights []int
	// Check configures active health checks.
	Check *CheckOptions
	// Outlier configures passive outlier detection.
	Outlier *OutlierOptions
	// Breaker configures a circuit breaker per server.
	Breaker *BreakerOptions
	// Limits bound what each server is given.
	Limits Limits
	// Shared, when set, shares the active checks with the instance's other
	// worker processes (shared.go): one process runs them.
	Shared *Shared
	// ProcessID identifies this process in Shared (default its pid).
	ProcessID uint64
	// FixedWeights, when not empty, names the balancing method whose weights
	// cannot change at runtime (SetWeight refuses).
	FixedWeights string
	// Logger receives a line per state change (default slog.Default()).
	Logger *slog.Logger
	// Dial, when set, opens the connections of http checks instead of
	// engine.Loop.Dial, returning where the request is written: the TLS dialer
	// of an upstream of https:// servers (tlsterm.Dialer.Dial), so that checks
	// verify the certificate and speak HTTP through TLS as the proxy does. h
	// gets OnOpen once the connection (and its handshake) is up, and OnClose
	// with an error when either fails. tcp checks connect plainly unless
	// CheckOptions.TLS is set.
	Dial func(l *engine.Loop, addr netip.AddrPort, timeout time.Duration, h engine.Handler) (*engine.Conn, Writer, error)
}

// Writer is where a check writes its request: the connection itself, or the
// TLS layer over it.
type Writer interface{ Write(p []byte) error }

// Limits bound the load on each server, summed over every loop of the instance.
// Zero means no limit.
type Limits struct {
	MaxConnections int // open connections but the idle pooled ones (nginx's max_conns)
	MaxPending     int // connects in progress
	MaxInFlight    int // requests sent and not yet answered
}

// Reasons a server is unavailable, as bits of serverState.flags.
const (
	fDown    = 1 << iota // failed its active checks
	fEjected             // ejected by outlier detection
	fOpen                // its breaker is open
	fDrained             // drained by the operator
)

// Group is the health state of one upstream's servers. Every method is safe from
// any goroutine; the proxy calls Unavailable, Admit, Done and the connection
// hooks on its loops.
type Group struct {
	opts Options
	log  *slog.Logger
	srv  []serverState

	// unavail has bit i set while server i has any reason flag; written under mu,
	// read by every loop on every attempt.
	unavail atomic.Uint64
	// ramping has bit i set while server i is in its gradual return after an
	// ejection or a check failure; written under mu.
	ramping atomic.Uint64
	// weightGen is bumped by every SetWeight so that balancers rebuild.
	weightGen atomic.Uint64

	mu   sync.Mutex                  // serializes state changes and their log lines
	home atomic.Pointer[engine.Loop] // the loop running checks and timers; set once by Start
	// checking is set while this process runs the checks of a shared group;
	// owned by the home loop.
	checking bool
	chain    uint64      // generation of the running probe chains; owned by the home loop
	stop     atomic.Bool // set by Stop: timers end at their next firing
}

// serverState is one server's state. Flags and counters are atomics; the
// outlier fields are guarded by Group.mu except the consecutive counters.
type serverState struct {
	addr    netip.AddrPort
	name    string
	flags   atomic.Uint32
	weight  atomic.Int32
	breaker Breaker

	inFlight, conns, pending atomic.Int64
	pooled                   atomic.Int64 // idle connections in the pools of the loops, among conns
	ewma                     atomic.Int64 // latency EWMA in nanoseconds; 0 before the first sample

	// Passive outlier detection.
	consec5xx, consecGateway atomic.Int32
	ejections                int          // ejections so far, for the next ejection time; guarded by mu
	ejectedUntil             time.Time    // guarded by mu
	rampFrom                 atomic.Int64 // unix nanoseconds when the gradual return began

	// Active checks; owned by the home loop. known: the server's state was seen,
	// by a check of this process or from the process that runs a shared
	// group's checks, so that fall applies to it (until then its first failed
	// check takes it down).
	okRun, failRun int
	known          bool

	// Counters.
	checksOK, checksFailed, transitions, ejectionsTotal, overflows, requests, failures atomic.Uint64
	lastCheck                                                                          atomic.Pointer[string]
}

// New builds a group for opts. Call Start to run its checks and timers on a loop.
func New(opts Options) (*Group, error) {
	if len(opts.Servers) == 0 || len(opts.Servers) > MaxServers {
		return nil, fmt.Errorf("health: group %q has %d servers; 1-%d are supported", opts.Name, len(opts.Servers), MaxServers)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var errs []error
	if c := opts.Check; c != nil {
		errs = append(errs, c.validate())
	}
	if o := opts.Outlier; o != nil {
		errs = append(errs, o.validate())
	}
	if b := opts.Breaker; b != nil {
		errs = append(errs, b.validate())
	}
	if sh := opts.Shared; sh != nil && len(sh.down) != len(opts.Servers) {
		errs = append(errs, fmt.Errorf("shared state for %d servers, the group has %d", len(sh.down), len(opts.Servers)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("health: group %q: %w", opts.Name, err)
	}
	g := &Group{opts: opts, log: opts.Logger.With("upstream", opts.Name), srv: make([]serverState, len(opts.Servers))}
	for i, a := range opts.Servers {
		s := &g.srv[i]
		s.addr = a
		s.name = a.String()
		if i < len(opts.Names) && opts.Names[i] != "" {
			s.name = opts.Names[i]
		}
		w := 1
		if i < len(opts.Weights) && opts.Weights[i] > 0 {
			w = opts.Weights[i]
		}
		s.weight.Store(int32(w))
		if opts.Breaker != nil {
			s.breaker = NewRatioBreaker(*opts.Breaker, g.breakerChanged(i))
		} else {
			s.breaker = NoBreaker{}
		}
	}
	return g, nil
}

// Name returns the group's name.
func (g *Group) Name() string { return g.opts.Name }

// Len returns the number of servers.
func (g *Group) Len() int { return len(g.srv) }

// Start makes l the group's home loop and starts the active checks there. It may
// be called from any goroutine, once.
func (g *Group) Start(l *engine.Loop) {
	g.home.Store(l)
	switch {
	case g.opts.Shared != nil:
		l.Post(func() { g.coordinate(l) })
	case g.opts.Check != nil:
		l.Post(func() { g.startChecks(l) })
	}
}

// Stop ends the active checks and timers (each at its next firing).
func (g *Group) Stop() { g.stop.Store(true) }

// after runs f on the home loop after d; without a home loop (a group never
// started) f never runs. It may be called with mu held.
func (g *Group) after(d time.Duration, f func()) {
	l := g.home.Load()
	if l == nil {
		return
	}
	l.Post(func() {
		l.AfterFunc(d, func() {
			if !g.stop.Load() {
				f()
			}
		})
	})
}

// Unavailable returns the set of servers (bit i for server i) that must not be
// picked now: down, ejected, breaker open or drained, and, during a server's
// gradual return, that server on a share of calls that shrinks to zero over
// the outlier slow_start, as long as another server remains: a gradual
// return shifts requests to the others and never leaves none (a server that
// returns while the others are down takes every request). One atomic load
// when nothing is ramping.
func (g *Group) Unavailable() uint64 {
	base := g.unavail.Load()
	r := g.ramping.Load()
	if r == 0 {
		return base
	}
	m := base
	slow := int64(g.slowStart())
	now := time.Now().UnixNano()
	for i := range g.srv {
		if r&(1<<i) == 0 {
			continue
		}
		elapsed := now - g.srv[i].rampFrom.Load()
		if elapsed >= slow {
			g.endRamp(i)
			continue
		}
		// Admitted on elapsed/slow of the calls, at least 10%.
		if rand.Int64N(slow) > max(elapsed, slow/10) {
			m |= 1 << i
		}
	}
	if all := g.all(); m&all == all {
		return base
	}
	return m
}

// all returns the set of every server of the group.
func (g *Group) all() uint64 {
	if len(g.srv) >= 64 {
		return ^uint64(0)
	}
	return 1<<len(g.srv) - 1
}

func (g *Group) slowStart() time.Duration {
	if o := g.opts.Outlier; o != nil && o.SlowStart > 0 {
		return o.SlowStart
	}
	return 0
}

func (g *Group) endRamp(i int) {
	g.mu.Lock()
	g.ramping.Store(g.ramping.Load() &^ (1 << i))
	g.mu.Unlock()
}

// setFlag sets or clears reason bits of server i and recomputes the unavailable
// set. It reports whether the server's availability changed. Called with mu held.
func (g *Group) setFlag(i int, bits uint32, on bool) bool {
	s := &g.srv[i]
	old := s.flags.Load()
	nw := old &^ bits
	if on {
		nw |= bits
	}
	s.flags.Store(nw)
	m := g.unavail.Load()
	if nw != 0 {
		m |= 1 << i
	} else {
		m &^= 1 << i
	}
	g.unavail.Store(m)
	changed := (old == 0) != (nw == 0)
	if changed {
		s.transitions.Add(1)
		if nw == 0 && g.slowStart() > 0 && old&(fDown|fEjected|fOpen) != 0 {
			s.rampFrom.Store(time.Now().UnixNano())
			g.ramping.Store(g.ramping.Load() | 1<<i)
		} else if nw != 0 {
			g.ramping.Store(g.ramping.Load() &^ (1 << i))
		}
	}
	return changed
}

// available counts the servers with no reason flag. Called with mu held.
func (g *Group) available() int {
	n := 0
	for i := range g.srv {
		if g.srv[i].flags.Load() == 0 {
			n++
		}
	}
	return n
}

// Weight returns server i's current weight (the configured one unless the
// operator set another).
func (g *Group) Weight(i int) int { return int(g.srv[i].weight.Load()) }

// WeightGen returns a number that changes whenever a weight does, so that a
// balancer built from Weight can tell when to rebuild.
func (g *Group) WeightGen() uint64 { return g.weightGen.Load() }

// Index returns the index of the server with address a, or -1.
func (g *Group) Index(a netip.AddrPort) int {
	for i := range g.srv {
		if g.srv[i].addr == a {
			return i
		}
	}
	return -1
}

// Addr returns server i's address.
func (g *Group) Addr(i int) netip.AddrPort { return g.srv[i].addr }

// Drain stops new requests to server i; those in flight finish. It reports
// whether the server was taking requests before.
func (g *Group) Drain(i int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	was := g.srv[i].flags.Load()&fDrained == 0
	g.log.Info("health: server drained", "server", g.srv[i].name, "in_flight", g.srv[i].inFlight.Load())
	g.setFlag(i, fDrained, true)
	g.shareAdmin(i)
	return was
}

// Enable ends a drain of server i.
func (g *Group) Enable(i int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.log.Info("health: server enabled", "server", g.srv[i].name)
	g.setFlag(i, fDrained, false)
	g.shareAdmin(i)
}

// SetWeight sets server i's weight (1-1000).
func (g *Group) SetWeight(i, w int) error {
	if w < 1 || w > 1000 {
		return fmt.Errorf("weight %d is out of range 1-1000", w)
	}
	if m := g.opts.FixedWeights; m != "" {
		return fmt.Errorf("the weights of a %s upstream cannot change at runtime", m)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.srv[i].weight.Store(int32(w))
	g.weightGen.Add(1)
	g.shareAdmin(i)
	g.log.Info("health: server weight set", "server", g.srv[i].name, "weight", w)
	return nil
}
