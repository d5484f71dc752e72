package app

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/internal/daemon/shm"
	"github.com/gale-server/gale/internal/dnsresolve"
	"github.com/gale-server/gale/lb"
	"github.com/gale-server/gale/proxy"
	"github.com/gale-server/gale/tlsterm"
)

// upstreamSet is the named upstreams one configuration built, with the settings
// each was built from, so that a reload keeps every upstream whose settings did
// not change (its pooled connections and health state with it). The map is
// filled while the configuration is built, then never changed.
type upstreamSet struct {
	byName map[string]*upstreamEntry
}

// upstreamEntry is one named upstream: its source (the current proxy.Upstream,
// replaced when a dynamic upstream's names resolve differently) and, for a
// dynamic one, its resolver loop.
type upstreamEntry struct {
	name string
	conf *config.Upstream
	src  *proxy.Source
	dyn  *dynamic // nil when every server is an IP literal
}

func newUpstreamSet() *upstreamSet {
	return &upstreamSet{byName: map[string]*upstreamEntry{}}
}

// named returns the entry of the named upstream, built once per configuration:
// the previous configuration's entry when its settings are unchanged, else a new
// one (resolving its names now, when it has any).
func (env *actionEnv) named(name string) (*upstreamEntry, error) {
	if e := env.set.byName[name]; e != nil {
		return e, nil
	}
	cu, ok := env.cfg.Upstreams[name]
	if !ok {
		return nil, fmt.Errorf("proxy: no upstream named %q", name)
	}
	var before *proxy.Upstream
	if p := env.prev; p != nil {
		if e := p.byName[name]; e != nil && reflect.DeepEqual(e.conf, cu) {
			env.set.byName[name] = e
			return e, nil
		} else if e != nil {
			before = e.src.Upstream()
		}
	}
	e := &upstreamEntry{name: name, conf: cu}
	var servers []proxy.Server
	if dynamicUpstream(cu) {
		e.dyn = &dynamic{e: e, env: env, stop: make(chan struct{})}
		var err error
		if servers, err = e.dyn.resolve(); err != nil {
			return nil, fmt.Errorf("proxy: upstream %s: %w", name, err)
		}
		e.dyn.last = servers
	}
	u, err := env.newUpstream(name, cu, servers)
	if err != nil {
		return nil, err
	}
	// The servers that remain keep their pooled connections.
	u.Adopt(before)
	e.src = proxy.NewSource(u)
	env.set.byName[name] = e
	return e, nil
}

// groups returns the health groups of the set, by upstream name.
func (s *upstreamSet) groups() []*health.Group {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*health.Group
	for _, n := range names {
		if g := s.byName[n].src.Upstream().Health(); g != nil {
			out = append(out, g)
		}
	}
	return out
}

// start starts what the entries prev did not have: their health groups on home
// (one checker per group for the instance) and their resolver loops; and stops
// prev's entries that s no longer has.
func (s *upstreamSet) start(home *engine.Loop, prev *upstreamSet) {
	had := map[*upstreamEntry]bool{}
	if prev != nil {
		for _, e := range prev.byName {
			had[e] = true
		}
	}
	keep := map[*upstreamEntry]bool{}
	for _, e := range s.byName {
		keep[e] = true
		if had[e] {
			continue
		}
		if g := e.src.Upstream().Health(); g != nil {
			g.Start(home)
		}
		if e.dyn != nil {
			e.dyn.home = home
			go e.dyn.run()
		}
	}
	for e := range had {
		if !keep[e] {
			e.stop()
		}
	}
}

// stopAll stops every entry's checks and resolver loop (at shutdown).
func (s *upstreamSet) stopAll() {
	if s == nil {
		return
	}
	for _, e := range s.byName {
		e.stop()
	}
}

func (e *upstreamEntry) stop() {
	if g := e.src.Upstream().Health(); g != nil {
		g.Stop()
	}
	if e.dyn != nil {
		e.dyn.once.Do(func() { close(e.dyn.stop) })
	}
}

// dynamicUpstream reports an upstream with a host name or an SRV spec.
func dynamicUpstream(cu *config.Upstream) bool {
	return slices.ContainsFunc(cu.Servers, func(s config.UpstreamServer) bool { return dnsresolve.IsName(s.Address) })
}

// dynamic re-resolves an upstream's names every resolve_every and, when the
// result changes, replaces the entry's upstream: requests in flight finish on
// the old one.
type dynamic struct {
	e    *upstreamEntry
	env  *actionEnv // what building the upstream again needs (not changed after the build)
	home *engine.Loop
	last []proxy.Server // owned by run after start
	stop chan struct{}
	once sync.Once
}

// resolve returns the servers of the upstream: literals as they are, names
// resolved (a host's addresses with the configured weight, an SRV record's with
// its weight).
func (d *dynamic) resolve() ([]proxy.Server, error) {
	cu := d.e.conf
	r := &dnsresolve.Resolver{Server: dnsresolve.DefaultServer(), Timeout: 2 * time.Second}
	if cu.Resolver != "" {
		ap, err := config.ParseUpstream(cu.Resolver)
		if err != nil {
			return nil, err
		}
		r.Server = ap
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []proxy.Server
	for _, s := range cu.Servers {
		ts, err := r.Lookup(ctx, s.Address)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			w := s.Weight
			if strings.HasPrefix(s.Address, dnsresolve.SRVPrefix) {
				w = min(t.Weight, 1000)
			}
			out = append(out, proxy.Server{Addr: t.Addr, Weight: w, Backup: s.Backup})
		}
	}
	if len(out) > health.MaxServers {
		return nil, fmt.Errorf("the names resolved to %d servers; at most %d are supported", len(out), health.MaxServers)
	}
	return out, nil
}

// run re-resolves until stopped.
func (d *dynamic) run() {
	every := d.e.conf.ResolveEvery
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	log := d.env.log.With("upstream", d.e.name)
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		servers, err := d.resolve()
		if err != nil {
			log.Warn("upstream: re-resolving failed; the servers stay as they are", "err", err)
			continue
		}
		if slices.Equal(servers, d.last) {
			continue
		}
		u, err := d.env.newUpstream(d.e.name, d.e.conf, servers)
		if err != nil {
			log.Warn("upstream: re-resolved servers refused", "err", err)
			continue
		}
		if g := u.Health(); g != nil {
			g.Start(d.home)
		}
		old := d.e.src.Set(u)
		if g := old.Health(); g != nil {
			g.Stop()
		}
		log.Info("upstream: servers re-resolved", "before", len(d.last), "after", len(servers))
		d.last = servers
	}
}

// healthGroup builds the health group of a configured upstream, or nil when it
// configures no health check, outlier detection, breaker or limit.
func (env *actionEnv) healthGroup(name string, cu *config.Upstream, o *proxy.UpstreamOptions) (*health.Group, error) {
	if !hasHealth(cu) {
		return nil, nil
	}
	ho := health.Options{Name: name, Logger: o.Logger, FixedWeights: fixedWeights(cu)}
	for i, s := range o.Servers {
		ho.Servers = append(ho.Servers, s.Addr)
		ho.Weights = append(ho.Weights, s.Weight)
		if i < len(cu.Servers) && !dynamicUpstream(cu) {
			ho.Names = append(ho.Names, cu.Servers[i].Address)
		}
	}
	if env.statsPath != "" {
		ho.Shared = sharedChecks(env.statsPath, name, o.Servers)
	}
	if o.TLS != nil {
		// http checks of https:// servers go through TLS, verified like the proxy's
		// own connections.
		var err error
		if ho.Dial, err = checkDialer(env.cfg.Loops(), o.TLS, o.Timeouts.Connect); err != nil {
			return nil, err
		}
	}
	if err := healthSettings(cu, &ho); err != nil {
		return nil, err
	}
	return health.New(ho)
}

// checkDialer returns the health.Options.Dial of checks through TLS with c, on
// a dialer of their own (its session cache is the checks').
func checkDialer(loops int, c *tls.Config, handshake time.Duration) (func(*engine.Loop, netip.AddrPort, time.Duration, engine.Handler) (*engine.Conn, health.Writer, error), error) {
	d, err := tlsterm.NewDialer(tlsterm.DialOptions{Loops: loops, Config: c.Clone(), HandshakeTimeout: handshake})
	if err != nil {
		return nil, err
	}
	return func(l *engine.Loop, addr netip.AddrPort, timeout time.Duration, h engine.Handler) (*engine.Conn, health.Writer, error) {
		ec, layer, err := d.Dial(l, addr, timeout, h)
		if err != nil {
			return nil, nil, err
		}
		return ec, layer, nil
	}, nil
}

// hasHealth reports whether cu configures any health check, outlier detection,
// breaker or limit.
func hasHealth(cu *config.Upstream) bool {
	return cu.HealthCheck != nil || cu.OutlierDetection != nil || cu.CircuitBreaker != nil || cu.Limits != (config.ServerLimits{})
}

// healthSettings fills o's checks, outlier detection, breaker and limits from cu.
func healthSettings(cu *config.Upstream, ho *health.Options) error {
	ho.Limits = health.Limits{MaxConnections: cu.Limits.MaxConnections, MaxPending: cu.Limits.MaxPending, MaxInFlight: cu.Limits.MaxInFlight}
	if h := cu.HealthCheck; h != nil {
		lo, hi, err := h.HTTP.StatusRange()
		if err != nil {
			return err
		}
		ho.Check = &health.CheckOptions{Type: h.Type, Interval: h.Interval, Timeout: h.Timeout, Jitter: h.Jitter, Rise: h.Rise, Fall: h.Fall,
			HTTP: health.HTTPCheck{Method: h.HTTP.Method, Path: h.HTTP.Path, Host: h.HTTP.Host, StatusMin: lo, StatusMax: hi, BodyContains: h.HTTP.BodyContains},
			TCP:  health.TCPCheck{Send: []byte(h.TCP.Send), Expect: []byte(h.TCP.Expect)}}
	}
	if od := cu.OutlierDetection; od != nil {
		ho.Outlier = &health.OutlierOptions{Consecutive5xx: od.Consecutive5xx, ConsecutiveGatewayFailure: od.ConsecutiveGatewayFailure,
			BaseEjectionTime: od.BaseEjectionTime, MaxEjectionTime: max(od.MaxEjectionTime, od.BaseEjectionTime),
			MaxEjectionPercent: od.MaxEjectionPercent, SlowStart: od.SlowStart}
	}
	if b := cu.CircuitBreaker; b != nil {
		ho.Breaker = &health.BreakerOptions{Window: max(b.Window, 10*time.Millisecond), MinRequests: b.MinRequests,
			FailureRatio: float64(b.FailureRatio) / 100, OpenFor: b.OpenFor, HalfOpenProbes: b.HalfOpenProbes}
	}
	return nil
}

// healthGroups returns the running configuration's health groups; safe from any
// goroutine.
func (a *App) healthGroups() []*health.Group {
	return append(a.ups.Load().groups(), a.tcpHealth...)
}

// fixedWeights returns the method when its weights cannot change at runtime:
// the load-tracking ones (their state is shared by the loops and processes;
// hash and maglev track with bounded_load only) and those without weights.
func fixedWeights(cu *config.Upstream) string {
	switch cu.Balance {
	case lb.LeastConn, lb.P2CEWMA, lb.RoundRobin, lb.First:
		return cu.Balance
	case lb.Hash, lb.Maglev:
		if cu.BoundedLoad > 0 {
			// The in-flight counts the bound reads are the balancer's own.
			return cu.Balance + " (bounded_load)"
		}
	}
	return ""
}

// sharedHealth holds the shared check states this process mapped, by path, for
// the life of the process (a reload that keeps a group's servers keeps its
// state).
var sharedHealth struct {
	mu sync.Mutex
	m  map[string]*health.Shared
}

// sharedChecks returns the instance-wide check state of upstream name over
// servers, in a file beside the stats segment, or nil (checks per process) when
// it cannot be mapped, which is logged.
func sharedChecks(statsPath, name string, servers []proxy.Server) *health.Shared {
	h := sha256.New()
	h.Write([]byte("health\n" + name))
	for _, s := range servers {
		h.Write([]byte("\n" + s.Addr.String()))
	}
	path := shm.LoadTablePath(statsPath, "health-"+hex.EncodeToString(h.Sum(nil)[:6]))
	sharedHealth.mu.Lock()
	defer sharedHealth.mu.Unlock()
	if s := sharedHealth.m[path]; s != nil {
		return s
	}
	mem, err := shm.MapShared(path, health.SharedSize(len(servers)))
	if err == nil {
		var s *health.Shared
		if s, err = health.SharedOn(mem, len(servers)); err == nil {
			if sharedHealth.m == nil {
				sharedHealth.m = map[string]*health.Shared{}
			}
			sharedHealth.m[path] = s
			return s
		}
		shm.Unmap(mem)
	}
	slog.Warn("health: checks run in every worker process (no shared state)", "upstream", name, "path", path, "err", err)
	return nil
}
