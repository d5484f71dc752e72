// Package app builds a running gale server from a validated configuration and
// applies new configurations to it (reload) without dropping connections.
package app

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/internal/os/listenaddr"
	"github.com/gale-server/gale/l4"
	"github.com/gale-server/gale/metrics"
	"github.com/gale-server/gale/metrics/accesslog"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/tlsterm"
)

// App is a running configuration: one server (one set of event loops) with a
// listener per configured address, each served by its virtual server's router.
type App struct {
	log       *slog.Logger
	mu        sync.Mutex // guards cfg and listeners during reload
	cfg       *config.Config
	srv       *server.Server
	listeners map[string]*server.Listener    // configured address -> listener
	terms     map[string]*tlsterm.Terminator // TLS address -> its terminator; guarded by mu
	pool      *tlsterm.Pool                  // handshakes of every TLS listener
	admin     *server.Listener               // the admin listener; nil when off
	obs       *observability
	logs      *logSet                 // access logs of the running config
	allLogs   []*accesslog.Log        // every log opened, closed at shutdown (a reload may retire some)
	workers   func() []metrics.Worker // worker rows for /status.json; nil when alone
	tcp       []*l4.Proxy             // the tcp entries, in config order; fixed until restart
	tcpHealth []*health.Group         // health of the named groups tcp entries use (tcphealth.go); fixed until restart
	tcpAddrs  map[string]string       // configured tcp listen address -> bound address; guarded by mu
	gates     []*l4.Gate              // PROXY protocol readers of accept_proxy listeners; guarded by mu
	gateAddrs []string                // the bound address of each gate's listener, index for index; guarded by mu
	tickets   []byte                  // Options.TicketSecret, for listeners a reload adds
	built     *config.Config          // the configuration the server was built with: restartOnly settings keep its values
	acme      acmeSet                 // ACME managers (acme.go)
	stop      chan struct{}           // closed by Shutdown: ends the ticket rotations
	stopOnce  sync.Once

	// ups is the named upstreams of the running config (upstreams.go).
	ups atomic.Pointer[upstreamSet]
}

// New builds the server for cfg; call Start to serve.
func New(cfg *config.Config, log *slog.Logger) (*App, error) {
	return NewWithOptions(cfg, log, Options{})
}

// NewWithOptions builds the server for cfg like New, with inherited listening
// sockets and loop placement taken from opts (see Options).
func NewWithOptions(cfg *config.Config, log *slog.Logger, opts Options) (*App, error) {
	if log == nil {
		log = slog.Default()
	}
	a := &App{log: log, cfg: cfg, built: cfg, listeners: map[string]*server.Listener{}, workers: opts.Workers}
	a.obs = newObservability(cfg, func() server.Stats { return a.srv.Stats() }, opts)
	a.obs.hubs.log = log // the NATS bridges log through the App's logger
	a.obs.features = metrics.NewFeatures(&health.Collector{Groups: a.healthGroups}, &l4.Collector{Proxies: a.TCPProxies, Gates: a.namedGates})
	so := serverOptions(cfg, log, notFound{})
	opts.place(&so)
	srv, err := server.New(so)
	if err != nil {
		return nil, err
	}
	a.srv = srv
	a.terms = map[string]*tlsterm.Terminator{}
	a.pool = tlsterm.NewPool(0, 0, 0)
	a.tickets, a.stop = opts.TicketSecret, make(chan struct{})
	fail := func(err error) (*App, error) {
		srv.Shutdown(context.Background())
		closeLogs(a.allLogs)
		return nil, err
	}
	logs, fresh, err := openLogs(cfg, srv.Engine().Loops(), nil)
	if err != nil {
		return fail(err)
	}
	a.logs, a.allLogs = logs, fresh
	a.obs.proc.SetExtras(append(logExtras(a.allLogs), a.tlsSamples, a.obs.hubs.samples, a.obs.features.Samples)...)
	routers, ups, err := buildRouters(cfg, a.obs, logs, nil, a.log)
	if err != nil {
		return fail(err)
	}
	a.ups.Store(ups)
	tlsAt, redirects := tlsOf(cfg), redirectsOf(cfg, acmeToken(cfg, a))
	a.answerACME(cfg, routers, tlsAt)
	gated := acceptProxyOf(cfg)
	for _, addr := range sortedKeys(redirects) {
		l, err := a.gate(cfg, gated[addr], func() (*server.Listener, error) {
			return opts.listenHTTP1(srv, RedirectSocketKey(addr), redirects[addr])
		})
		if err != nil {
			return fail(err)
		}
		a.listeners[addr] = l
	}
	for _, addr := range sortedKeys(routers) {
		var l *server.Listener
		if t := tlsAt[addr]; t != nil {
			l, err = a.gate(cfg, gated[addr], func() (*server.Listener, error) { return a.listenTLS(addr, t, routers[addr], &opts) })
		} else {
			l, err = a.gate(cfg, gated[addr], func() (*server.Listener, error) { return opts.listen(srv, addr, routers[addr]) })
		}
		if err != nil {
			return fail(err)
		}
		a.listeners[addr] = l
	}
	if cfg.Admin.Listen != "" {
		l, err := opts.listenHTTP1(srv, AdminSocketKey(cfg.Admin.Listen), a.adminHandler(cfg))
		if err != nil {
			return fail(fmt.Errorf("admin: %w", err))
		}
		a.admin = l
	}
	if err := a.startTCP(cfg, opts); err != nil {
		return fail(err)
	}
	ups.start(srv.Engine().Loops()[0], nil)
	return a, nil
}

// startTCP builds a layer-4 proxy for every tcp entry on the server's loops and
// starts listening on its addresses (inherited sockets first, as for servers).
func (a *App) startTCP(cfg *config.Config, opts Options) error {
	a.tcpAddrs = map[string]string{}
	hg := map[string]*health.Group{}
	defer a.startTCPHealth()
	for i := range cfg.TCP {
		o, err := l4.FromConfig(&cfg.TCP[i], cfg.Upstreams, cfg.Loops(), a.log, a.tcpHealthFor(cfg, hg))
		if err != nil {
			return fmt.Errorf("tcp[%d]: %w", i, err)
		}
		px, err := l4.New(a.srv.Engine(), o)
		if err != nil {
			return fmt.Errorf("tcp[%d]: %w", i, err)
		}
		for _, addr := range cfg.TCP[i].Listen {
			if in, ok := opts.Listeners[TCPSocketKey(addr)]; ok && len(in.FDs) > 0 {
				if err := px.ListenFDs(in.FDs); err != nil {
					return fmt.Errorf("tcp[%d]: %w", i, err)
				}
				a.tcpAddrs[addr] = in.Addr
				continue
			}
			bound, err := px.Listen(addr)
			if err != nil {
				return fmt.Errorf("tcp[%d]: %w", i, err)
			}
			a.tcpAddrs[addr] = bound
		}
		a.tcp = append(a.tcp, px)
	}
	return nil
}

// TCPProxies returns the layer-4 proxies of the tcp entries, in config order.
func (a *App) TCPProxies() []*l4.Proxy { return a.tcp }

// notFound is the server's default handler; every listener has its own router.
type notFound struct{}

func (notFound) ServeGale(c *server.Ctx) { c.Error(404, "") }

func serverOptions(cfg *config.Config, log *slog.Logger, h server.Handler) server.Options {
	return server.Options{
		Handler: h,
		Workers: cfg.Loops(),
		Engine:  cfg.Engine,
		// zerocopy: 0 means off in the configuration, the engine's default in Go.
		ZeroCopy: cmp.Or(int(cfg.ZeroCopy), -1),
		CPUs:     cpuList(cfg),
		Limits: http1.Limits{
			MaxRequestLine:  int(cfg.Limits.RequestLine),
			MaxHeaderBytes:  int(cfg.Limits.HeaderBytes),
			MaxHeaderFields: cfg.Limits.HeaderFields,
			MaxBodyBytes:    cfg.Limits.BodyBytes,
		},
		HeaderTimeout:   cfg.Timeouts.Header,
		IdleTimeout:     cfg.Timeouts.Idle,
		BodyTimeout:     cfg.Timeouts.Body,
		WriteTimeout:    cfg.Timeouts.Write,
		ResponseTimeout: cfg.Timeouts.Response,
		DeferAccept:     cmp.Or(cfg.Timeouts.DeferAccept, -1), // 0 means off here, the default in Go
		Logger:          log,
	}
}

// Server returns the underlying server.
func (a *App) Server() *server.Server { return a.srv }

// Addrs returns the bound address of each configured listen address.
func (a *App) Addrs() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]string{}
	for k, l := range a.listeners {
		out[k] = l.Addr
	}
	for k, bound := range a.tcpAddrs {
		out[k] = bound
	}
	return out
}

// AdminAddr returns the admin listener's bound address, or "" when it is off.
func (a *App) AdminAddr() string {
	if a.admin == nil {
		return ""
	}
	return a.admin.Addr
}

// Start runs the event loops.
func (a *App) Start() {
	a.srv.Start()
	a.mu.Lock()
	a.startACME()
	a.mu.Unlock()
}

// Shutdown stops gracefully within ctx, ends the ticket-key rotations, writes the
// pub/sub snapshots (history.file), then writes out and closes the access logs:
// every line of every request served is in them.
func (a *App) Shutdown(ctx context.Context) error {
	a.stopOnce.Do(func() { close(a.stop) })
	a.ups.Load().stopAll()
	err := a.srv.Shutdown(ctx)
	hubErr := a.obs.hubs.close(a.log)
	a.mu.Lock()
	logs := a.allLogs
	a.mu.Unlock()
	return errors.Join(err, hubErr, closeLogs(logs))
}

// Reload applies cfg: each listener switches to its new router at the next request
// boundary, new addresses start listening, open connections stay up. Settings that
// need new event loops (workers, processes, affinity) take effect only on restart
// or upgrade; a change to them is logged. An error leaves the running config as it
// was.
func (a *App) Reload(cfg *config.Config) error {
	err := a.reload(cfg)
	a.obs.recordReload(err)
	return err
}

func (a *App) reload(cfg *config.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	logs, fresh, err := openLogs(cfg, a.srv.Engine().Loops(), a.logs)
	if err != nil {
		return err
	}
	routers, ups, err := buildRouters(cfg, a.obs, logs, a.ups.Load(), a.log)
	if err != nil {
		closeLogs(fresh)
		return err
	}
	tlsAt, redirects, gated := tlsOf(cfg), redirectsOf(cfg, acmeToken(cfg, a)), acceptProxyOf(cfg)
	if err := a.tlsUnchanged(routers, tlsAt); err != nil {
		closeLogs(fresh)
		return err
	}
	// Every address this reload adds must be bindable before any starts
	// listening: a refused reload leaves nothing of the new file in place.
	for _, addr := range append(sortedKeys(redirects), sortedKeys(routers)...) {
		if _, open := a.listeners[addr]; !open {
			if err := checkBindable(addr); err != nil {
				closeLogs(fresh)
				return fmt.Errorf("reload: listen %s: %w", addr, err)
			}
		}
	}
	a.answerACME(cfg, routers, tlsAt)
	// Certificates load before anything changes: a file that fails keeps the
	// running configuration (Validate has reported it with its position already).
	tlsConfs := map[string]*tls.Config{}
	tlsAuths := map[string]*tlsterm.ClientAuth{}
	for addr, t := range tlsAt {
		c, auth, err := a.tlsConfig(t)
		if err != nil {
			closeLogs(fresh)
			return fmt.Errorf("reload: %s: %w", addr, err)
		}
		tlsConfs[addr], tlsAuths[addr] = c, auth
	}
	// Logs the new config no longer uses may still get the lines of requests
	// in flight: they are closed at shutdown, not now.
	a.logs = logs
	a.allLogs = append(a.allLogs, fresh...)
	a.obs.proc.SetExtras(append(logExtras(a.allLogs), a.tlsSamples, a.obs.hubs.samples, a.obs.features.Samples)...)
	for _, addr := range sortedKeys(redirects) {
		if _, ok := a.listeners[addr]; ok {
			continue
		}
		l, err := a.gate(cfg, gated[addr], func() (*server.Listener, error) { return a.srv.ListenHandler(addr, redirects[addr]) })
		if err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		a.listeners[addr] = l
	}
	for _, addr := range sortedKeys(routers) {
		if _, ok := a.listeners[addr]; ok {
			continue
		}
		var l *server.Listener
		var err error
		if t := tlsAt[addr]; t != nil {
			l, err = a.gate(cfg, gated[addr], func() (*server.Listener, error) {
				return a.listenTLS(addr, t, routers[addr], &Options{TicketSecret: a.tickets})
			})
		} else {
			var none Options
			l, err = a.gate(cfg, gated[addr], func() (*server.Listener, error) { return none.listen(a.srv, addr, routers[addr]) })
		}
		if err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		a.listeners[addr] = l
	}
	for addr, term := range a.terms {
		if c, ok := tlsConfs[addr]; ok {
			term.SetConfigAuth(c, tlsAuths[addr])
		}
	}
	a.reloadACME(cfg)
	for addr, l := range a.listeners {
		if r, ok := routers[addr]; ok {
			if old, ok := routerOf(l.Handler()); ok && (old.h2c != r.h2c || old.h2 != r.h2 || old.http1 != r.http1 || old.h2cUpgrade != r.h2cUpgrade) {
				a.log.Warn("a change of protocols on a listening address takes effect on restart or upgrade", "addr", addr)
			}
			if t := tlsAt[addr]; t != nil {
				l.SetHandler(tlsHandler(r, t))
			} else {
				l.SetHandler(r)
			}
		} else if r, ok := redirects[addr]; ok {
			l.SetHandler(r)
		} else {
			// Removed from the config: answer 404 until restart; the socket stays bound
			// so that the address can come back on the next reload without a race.
			l.SetHandler(notFound{})
			a.log.Warn("listen address removed from config; it answers 404 until restart", "addr", addr)
		}
	}
	switch {
	case cfg.Admin.Listen != a.cfg.Admin.Listen:
		a.log.Warn("admin.listen changes take effect on restart or upgrade")
	case a.admin != nil:
		a.admin.SetHandler(a.adminHandler(cfg))
	}
	if !reflect.DeepEqual(cfg.TCP, a.cfg.TCP) {
		a.log.Warn("tcp entry changes take effect on restart or upgrade")
	}
	if keys := restartOnly(a.built, cfg); len(keys) > 0 {
		a.log.Warn("reload: these changes take effect on restart or upgrade; the running values stay", "keys", strings.Join(keys, ","))
	}
	ups.start(a.srv.Engine().Loops()[0], a.ups.Swap(ups))
	a.cfg = cfg
	a.startACME() // managers of acme sections this reload added
	return nil
}

// tlsUnchanged refuses a reload that adds tls to a listening address that
// serves plain HTTP, or removes it from one that serves TLS: a listener's
// sockets go through a TLS terminator or not from the start, so the new routes
// would be served without the TLS their server asks for (or with a TLS it no
// longer has). Nothing is applied; a restart or an upgrade (SIGUSR2) builds the
// listener anew, on the same sockets.
func (a *App) tlsUnchanged(routers map[string]*Router, tlsAt map[string]*config.TLS) error {
	for _, addr := range sortedKeys(routers) {
		if _, open := a.listeners[addr]; !open {
			continue
		}
		switch _, wasTLS := a.terms[addr]; {
		case !wasTLS && tlsAt[addr] != nil:
			return fmt.Errorf("reload: listen address %s serves plain HTTP: adding tls to it takes effect on restart or upgrade", addr)
		case wasTLS && tlsAt[addr] == nil:
			return fmt.Errorf("reload: listen address %s serves TLS: removing tls from it takes effect on restart or upgrade", addr)
		}
	}
	return nil
}

// restartOnly lists the keys whose values in next differ from old, the
// configuration the App was built with, and that a reload cannot apply: the
// settings the server, its loops and sockets and the process log are built
// with at start. Reload warns about them rather than leave an operator
// believing that a new limit or timeout is in force.
func restartOnly(old, next *config.Config) []string {
	var keys []string
	add := func(changed bool, key string) {
		if changed {
			keys = append(keys, key)
		}
	}
	add(old.Loops() != next.Loops(), "workers")
	add(old.Processes != next.Processes, "processes")
	add(!reflect.DeepEqual(old.CPUAffinity, next.CPUAffinity), "cpu_affinity")
	add(old.NUMA != next.NUMA, "numa")
	add(old.Engine != next.Engine, "engine")
	add(old.ZeroCopy != next.ZeroCopy, "zerocopy")
	add(old.Log.Format != next.Log.Format, "log.format")
	// The route counters hold one slot per bucket, made at start.
	add(!reflect.DeepEqual(old.Admin.Metrics.Buckets, next.Admin.Metrics.Buckets), "admin.metrics.buckets")
	ot, nt := old.Timeouts, next.Timeouts
	add(ot.Header != nt.Header, "timeouts.header")
	add(ot.Idle != nt.Idle, "timeouts.idle")
	add(ot.Body != nt.Body, "timeouts.body")
	add(ot.Write != nt.Write, "timeouts.write")
	add(ot.Response != nt.Response, "timeouts.response")
	add(ot.DeferAccept != nt.DeferAccept, "timeouts.defer_accept")
	add(acceptProxyChanged(old, next), "accept_proxy")
	// A TLS listener's terminator takes these when it opens; a reload swaps
	// only its certificates and crypto/tls settings.
	oldTLS, nextTLS := tlsOf(old), tlsOf(next)
	for _, f := range []struct {
		key  string
		same func(a, b *config.TLS) bool
	}{
		{"tls.handshake_timeout", func(a, b *config.TLS) bool { return a.HandshakeTimeout == b.HandshakeTimeout }},
		{"tls.ticket_key_file", func(a, b *config.TLS) bool { return a.TicketKeyFile == b.TicketKeyFile }},
		{"tls.ticket_rotation", func(a, b *config.TLS) bool { return a.TicketRotation == b.TicketRotation }},
	} {
		changed := false
		for addr, b := range nextTLS {
			if a := oldTLS[addr]; a != nil && !f.same(a, b) {
				changed = true
			}
		}
		add(changed, f.key)
	}
	ol, nl := old.Limits, next.Limits
	add(ol.RequestLine != nl.RequestLine, "limits.request_line")
	add(ol.HeaderBytes != nl.HeaderBytes, "limits.header_bytes")
	add(ol.HeaderFields != nl.HeaderFields, "limits.header_fields")
	add(ol.BodyBytes != nl.BodyBytes, "limits.body_bytes")
	return keys
}

// Run serves cfg until ctx ends, then shuts down within the configured grace.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	a, err := New(cfg, log)
	if err != nil {
		return err
	}
	a.Start()
	for _, addr := range sortedKeys(a.Addrs()) {
		log.Info("listening", "addr", a.Addrs()[addr], "loops", cfg.Loops(), "engine", a.srv.Engine().Backend())
	}
	reloads, refused := config.Reloads(ctx), config.RefusedReloads(ctx)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case err := <-refused:
			a.RecordRefusedReload(err)
		case next := <-reloads:
			if err := a.Reload(next); err != nil {
				log.Error("reload failed; the running configuration stays", "err", err)
			} else {
				log.Info("configuration reloaded")
			}
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.ShutdownGrace)
	defer cancel()
	log.Info("shutting down", "grace", cfg.Timeouts.ShutdownGrace)
	return a.Shutdown(sctx)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// cpuList turns the affinity setting into the CPUs loops are pinned to.
func cpuList(cfg *config.Config) []int {
	switch cfg.CPUAffinity.Mode {
	case config.AffinityOff:
		return nil
	case config.AffinityList:
		return cfg.CPUAffinity.CPUs
	}
	return autoCPUs()
}

// buildRouters compiles every virtual server into one router per listen address.
// Two servers may not share an address, however it is spelled, nor overlap (a
// wildcard and a specific address on one port): compared after listenaddr.Resolve,
// the rule Validate applies, for configs built in Go without it.
func buildRouters(cfg *config.Config, ob *observability, logs *logSet, prev *upstreamSet, log *slog.Logger) (map[string]*Router, *upstreamSet, error) {
	out := map[string]*Router{}
	type use struct {
		addr   netip.AddrPort
		server int
	}
	var uses []use
	env := newActionEnv(cfg, prev, log)
	env.statsPath, env.statsSlot = ob.statsPath, ob.statsSlot
	env.hubs = ob.hubs
	for si := range cfg.Servers {
		s := &cfg.Servers[si]
		r := &Router{h2c: s.HasProtocol(config.ProtoH2C), h2: s.HasProtocol(config.ProtoH2), h2cUpgrade: s.H2CUpgrade,
			http1: len(s.Protocols) == 0 || s.HasProtocol(config.ProtoHTTP1), none: ob.observer(cfg, logs, si, -1)}
		for ri := range s.Routes {
			rt, err := buildRoute(&s.Routes[ri], env)
			if err != nil {
				return nil, nil, fmt.Errorf("servers[%d].routes[%d]: %w", si, ri, err)
			}
			rt.obs = ob.observer(cfg, logs, si, ri)
			r.routes = append(r.routes, rt)
		}
		for _, addr := range s.Listen {
			ap, err := listenaddr.Resolve(addr)
			if err != nil {
				return nil, nil, fmt.Errorf("servers[%d]: %w", si, err)
			}
			for _, u := range uses {
				if listenaddr.Overlap(ap, u.addr) && (u.server != si || ap == u.addr) {
					return nil, nil, fmt.Errorf("servers[%d]: listen address %s overlaps one of servers[%d]", si, addr, u.server)
				}
			}
			if _, dup := out[addr]; dup {
				return nil, nil, fmt.Errorf("servers[%d]: listen address %s is used by two servers", si, addr)
			}
			uses = append(uses, use{ap, si})
			out[addr] = r
		}
	}
	return out, env.set, nil
}

func buildRoute(r *config.Route, env *actionEnv) (route, error) {
	rt := route{actionName: r.Action()}
	var err error
	if rt.prefix, err = normRoutePath(r.Match.Path); err != nil {
		return route{}, err
	}
	if rt.exact, err = normRoutePath(r.Match.PathExact); err != nil {
		return route{}, err
	}
	if h := normHost(r.Match.Host); strings.HasPrefix(h, "*.") {
		rt.host, rt.wildcard = h[1:], true
	} else {
		rt.host = h
		if ip, err := netip.ParseAddr(h); err == nil {
			rt.hostIP = ip.WithZone("")
		}
	}
	for _, m := range r.Match.Methods {
		rt.methods = append(rt.methods, strings.ToUpper(m))
	}
	h, err := buildAction(r, env)
	if err != nil {
		return route{}, err
	}
	rt.handler = h
	rt.exchange, _ = h.(server.ExchangeHandler)
	return rt, nil
}

// normRoutePath normalizes a configured match path with http1.NormalizePath, so that
// it is compared with request paths in the same form ("" stays "").
func normRoutePath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	n, err := http1.NormalizePath(nil, []byte(p))
	if err != nil {
		return "", fmt.Errorf("match path %q: %s", p, err.Reason)
	}
	return string(n), nil
}
