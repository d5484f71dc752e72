package l4

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/lb"
)

// Options configure a Proxy. New fills the zero values as noted.
type Options struct {
	// Upstreams is the group connections go to; with SNI set, the group for
	// server names without a route (may then be nil).
	Upstreams Balancer
	// SNI, when not empty, routes TLS connections by server name: keys as in
	// config.TCP.SNI ("a.example", "*.b.example", "default").
	SNI map[string]Balancer
	// ConnectTimeout bounds one connect to an upstream server; default 5s.
	ConnectTimeout time.Duration
	// PreambleTimeout bounds the wait for the PROXY header and ClientHello; default 10s.
	PreambleTimeout time.Duration
	// IdleTimeout closes a relay that has moved no byte for it; default 1h.
	IdleTimeout time.Duration
	// MaxConns bounds the client connections relayed at once; 0 means no limit.
	MaxConns int
	// AcceptProxy lists the networks whose connections must start with a PROXY header.
	AcceptProxy []netip.Prefix
	// SendProxy is 0 (none), 1 or 2: the PROXY header version sent upstream.
	SendProxy int
	// SpliceAfter is the bytes a direction copies, in a run of reads of at least
	// 16 KiB each (a bulk transfer), before it splices; 0 never splices.
	SpliceAfter int64
	// spliceSmall counts every read toward SpliceAfter, for the benchmarks of
	// the splice path with small messages.
	spliceSmall bool
	// Name labels the proxy's metrics (Collector); FromConfig sets the entry's
	// first listen address.
	Name string
	// Logger receives the log lines of refused connections; default slog.Default().
	Logger *slog.Logger
}

// Stats are a proxy's cumulative counters.
type Stats struct {
	Accepted       uint64 // client connections accepted
	Active         int64  // client connections open now
	OverLimit      uint64 // closed at once because MaxConns were open
	BadProxy       uint64 // closed for a missing or malformed PROXY header
	BadHello       uint64 // closed for a missing, malformed or oversized ClientHello
	NoRoute        uint64 // closed because no SNI route matched
	DialFailures   uint64 // upstream connects that failed (each try)
	UpstreamFailed uint64 // clients reset because every upstream server failed
	Copied         uint64 // bytes relayed by copying
	Spliced        uint64 // bytes relayed by splice(2)
	Backpressure   uint64 // times a side was paused because the other had not sent on its bytes
	ToUpstream     uint64 // bytes relayed from clients to upstreams, counted when each relay ends
	ToClient       uint64 // bytes relayed from upstreams to clients, counted when each relay ends
	Relays         uint64 // connections relayed: their upstream connected
}

// counters is the atomic form of Stats, shared by all loops.
type counters struct {
	accepted, overLimit, badProxy, badHello, noRoute, dialFailures, upstreamFailed, backpressure atomic.Uint64
	toUpstream, toClient, relays                                                                 atomic.Uint64
	active                                                                                       atomic.Int64
}

// perLoop is one loop's share of a Proxy: its pipe pool and the byte counters
// added to on every read. Owned by that loop: only it writes them (Stats reads
// the counters atomically). The padding keeps two loops' counters off one cache
// line, so the loops never contend for it on the per-message path (with one
// shared counter each relayed message bounced a cache line between the cores).
type perLoop struct {
	pipes           pipePool
	copied, spliced loopCounter
	_               [64]byte
}

// loopCounter is a counter with one writer, its loop: the writer adds without a
// locked instruction, readers on other goroutines load it atomically.
type loopCounter struct{ n atomic.Uint64 }

// add adds d; only the owning loop calls it.
func (c *loopCounter) add(d int) { c.n.Store(c.n.Load() + uint64(d)) }

// Proxy relays the connections of its listeners. Its configuration is immutable;
// its counters and its loops' pipe pools are the only state, each pool owned by
// its loop.
type Proxy struct {
	opt    Options
	eng    *engine.Engine
	routes *router // nil without SNI
	down   *downHandler
	up     *upHandler
	loops  []perLoop // index: Loop.ID(); each owned by its loop
	stats  counters
}

// New returns a proxy for eng's loops. Listen adds listening addresses.
func New(eng *engine.Engine, opt Options) (*Proxy, error) {
	if opt.Upstreams == nil && len(opt.SNI) == 0 {
		return nil, errors.New("l4: no upstreams")
	}
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = 5 * time.Second
	}
	if opt.PreambleTimeout <= 0 {
		opt.PreambleTimeout = 10 * time.Second
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = time.Hour
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	p := &Proxy{opt: opt, eng: eng, loops: make([]perLoop, len(eng.Loops()))}
	p.down, p.up = &downHandler{p}, &upHandler{p}
	if len(opt.SNI) > 0 {
		p.routes = &router{def: opt.Upstreams}
		for k, b := range opt.SNI {
			p.routes.add(k, b)
		}
	}
	return p, nil
}

// FromConfig turns a validated config.TCP entry into Options for an engine of
// loops event loops. ups is the top-level upstreams mapping that `upstream:
// NAME` and SNI routes by name refer to: a named group is balanced by its own
// balance method over its weights and backups, an inline list by t.Balance.
// Keyed methods hash the client's address (a group's hash_key is for HTTP).
// healthFor, when not nil, gives a named group its health state (nil for a
// group without health settings); it is called once per name.
func FromConfig(t *config.TCP, ups map[string]*config.Upstream, loops int, log *slog.Logger, healthFor HealthFunc) (Options, error) {
	named := map[string]Balancer{} // one balancer per group, shared by its routes
	group := func(name string, list []string) (Balancer, error) {
		if name != "" {
			if b, ok := named[name]; ok {
				return b, nil
			}
			u, ok := ups[name]
			if !ok || len(u.Servers) == 0 {
				return nil, fmt.Errorf("no upstream named %q with servers", name)
			}
			servers := make([]netip.AddrPort, len(u.Servers))
			ls := make([]lb.Server, len(u.Servers))
			for i, s := range u.Servers {
				addr, _ := s.Endpoint() // https:// servers speak TLS: relayed as they are
				ap, err := config.ParseUpstream(addr)
				if err != nil {
					return nil, fmt.Errorf("upstream %s: %w", name, err)
				}
				servers[i], ls[i] = ap, lb.Server{ID: ap.String(), Weight: s.Weight, Backup: s.Backup}
			}
			b, err := NewGroupOf(servers, ls, u.Balance, lb.Options{
				Loops: loops, VNodes: u.VNodes, TableSize: u.TableSize, BoundedLoad: float64(u.BoundedLoad) / 100,
			})
			if err != nil {
				return nil, fmt.Errorf("upstream %s: %w", name, err)
			}
			if healthFor != nil {
				h, err := healthFor(name, u, servers)
				if err != nil {
					return nil, fmt.Errorf("upstream %s: %w", name, err)
				}
				b.SetHealth(h)
			}
			named[name] = b
			return b, nil
		}
		if len(list) == 0 {
			return nil, nil
		}
		servers := make([]netip.AddrPort, len(list))
		for i, s := range list {
			ap, err := config.ParseUpstream(s)
			if err != nil {
				return nil, err
			}
			servers[i] = ap
		}
		return NewGroup(servers, t.Balance, lb.Options{Loops: loops})
	}
	o := Options{
		ConnectTimeout: t.Timeouts.Connect, PreambleTimeout: t.Timeouts.Preamble, IdleTimeout: t.Timeouts.Idle,
		MaxConns: t.MaxConns, SpliceAfter: t.SpliceAfter, Logger: log,
	}
	if len(t.Listen) > 0 {
		o.Name = t.Listen[0]
	}
	switch t.SendProxy {
	case config.SendProxyV1:
		o.SendProxy = 1
	case config.SendProxyV2:
		o.SendProxy = 2
	}
	var err error
	if o.AcceptProxy, err = config.ParseCIDRs(t.AcceptProxy); err != nil {
		return o, err
	}
	if o.Upstreams, err = group(t.Upstream, t.Upstreams); err != nil {
		return o, err
	}
	for _, k := range config.SNIKeys(t.SNI) {
		r := t.SNI[k]
		b, err := group(r.Upstream, r.Servers)
		if err != nil {
			return o, fmt.Errorf("sni %s: %w", k, err)
		}
		if o.SNI == nil {
			o.SNI = map[string]Balancer{}
		}
		o.SNI[k] = b
	}
	return o, nil
}

// HealthFunc returns the health state of the named upstream group u, whose
// servers parsed to servers, or nil when it has none.
type HealthFunc func(name string, u *config.Upstream, servers []netip.AddrPort) (*health.Group, error)

// Listen starts accepting on addr (host:port) and returns the bound address.
func (p *Proxy) Listen(addr string) (string, error) { return p.eng.Listen(addr, p.down) }

// ListenFDs accepts on inherited listening sockets.
func (p *Proxy) ListenFDs(fds []int) error { return p.eng.ListenFDs(fds, p.down) }

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	s := &p.stats
	var copied, spliced uint64
	for i := range p.loops {
		copied += p.loops[i].copied.n.Load()
		spliced += p.loops[i].spliced.n.Load()
	}
	return Stats{
		Accepted: s.accepted.Load(), Active: s.active.Load(), OverLimit: s.overLimit.Load(),
		BadProxy: s.badProxy.Load(), BadHello: s.badHello.Load(), NoRoute: s.noRoute.Load(),
		DialFailures: s.dialFailures.Load(), UpstreamFailed: s.upstreamFailed.Load(),
		Copied: copied, Spliced: spliced, Backpressure: s.backpressure.Load(),
		ToUpstream: s.toUpstream.Load(), ToClient: s.toClient.Load(), Relays: s.relays.Load(),
	}
}

// trusted reports whether a connection from a must send a PROXY header.
func (p *Proxy) trusted(a netip.Addr) bool { return trustedBy(p.opt.AcceptProxy, a) }
