package app

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/proxy"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/tlsterm"
)

// actionEnv is what building route actions needs beyond the route: the whole
// configuration, and the upstreams built so far (a named upstream is built once and
// shared by every route that uses it, so they share its connection pools).
type actionEnv struct {
	cfg       *config.Config
	statsPath string       // the instance's stats segment ("" when alone): shared load tables live beside it
	statsSlot int          // this process's row in them
	hubs      *hubSet      // the App's pub/sub hubs, kept across reloads
	prev      *upstreamSet // the running configuration's upstreams (nil at start)
	set       *upstreamSet // the named upstreams built for cfg (upstreams.go)
	// log is the App's logger (a worker's carries worker=N): the proxy's,
	// the file server's and dynamic upstreams' lines go through it.
	log *slog.Logger
}

func newActionEnv(cfg *config.Config, prev *upstreamSet, log *slog.Logger) *actionEnv {
	if log == nil {
		log = slog.Default()
	}
	return &actionEnv{cfg: cfg, prev: prev, set: newUpstreamSet(), log: log}
}

// buildProxy turns a proxy action into its handler.
func (env *actionEnv) buildProxy(p *config.Proxy) (server.Handler, error) {
	var u *proxy.Upstream
	var src *proxy.Source
	if p.Upstream != "" {
		e, err := env.named(p.Upstream)
		if err != nil {
			return nil, err
		}
		src = e.src
	} else {
		var err error
		if u, err = env.newUpstream("inline", p.InlineUpstream(), nil); err != nil {
			return nil, err
		}
	}
	r := proxy.Route{StripPrefix: p.StripPrefix, PreserveHost: p.PreserveHost, Via: p.Via, IgnoreClientHalfClose: p.IgnoreClientHalfClose,
		UnderscoresInHeaders: p.UnderscoresInHeaders}
	names := make([]string, 0, len(p.SetHeaders))
	for n := range p.SetHeaders {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r.SetHeaders = append(r.SetHeaders, [2]string{n, p.SetHeaders[n]})
	}
	for _, s := range p.TrustedProxies {
		pfx, err := config.ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		r.TrustedProxies = append(r.TrustedProxies, pfx)
	}
	if src != nil {
		return proxy.NewFromSource(src, r), nil
	}
	return proxy.New(u, r), nil
}

// newUpstream converts a configured upstream; servers, when not nil, replace the
// configured ones (a dynamic upstream's resolved servers).
func (env *actionEnv) newUpstream(name string, cu *config.Upstream, servers []proxy.Server) (*proxy.Upstream, error) {
	loops := env.cfg.Loops()
	o := proxy.UpstreamOptions{
		Name: name,
		Keepalive: proxy.Keepalive{
			Idle: cu.Keepalive.Idle, IdleTimeout: cu.Keepalive.IdleTimeout, MaxRequests: cu.Keepalive.MaxRequests,
		},
		Timeouts: proxy.Timeouts{
			Connect: cu.Timeouts.Connect, ResponseHeader: cu.Timeouts.ResponseHeader,
			Read: cu.Timeouts.Read, Write: cu.Timeouts.Write,
		},
		Retries: proxy.Retries{
			Tries:            cu.Retries.Tries,
			ConnectFailure:   slices.Contains(cu.Retries.On, config.RetryConnectFailure),
			ResetBeforeReply: slices.Contains(cu.Retries.On, config.RetryResetBeforeResponse),
			Budget:           float64(cu.Retries.Budget) / 100,
		},
		Logger: env.log,
	}
	o.Servers = servers
	https := false
	for _, s := range cu.Servers {
		_, tls := s.Endpoint()
		https = https || tls
	}
	for _, s := range cu.Servers {
		if servers != nil {
			break
		}
		a, _ := s.Endpoint()
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			// localhost:PORT in an inline list, which is not resolved.
			if ap, err = config.ParseUpstream(a); err != nil {
				return nil, fmt.Errorf("proxy: upstream %s: %w", name, err)
			}
		}
		o.Servers = append(o.Servers, proxy.Server{Addr: ap, Weight: s.Weight, Backup: s.Backup})
	}
	if err := env.balanceOptions(&o, name, cu); err != nil {
		return nil, fmt.Errorf("proxy: upstream %s: %w", name, err)
	}
	if https {
		c, err := upstreamClientTLS(cu)
		if err != nil {
			return nil, fmt.Errorf("proxy: upstream %s: %w", name, err)
		}
		o.TLS = c
	}
	g, err := env.healthGroup(name, cu, &o)
	if err != nil {
		return nil, fmt.Errorf("proxy: upstream %s: %w", name, err)
	}
	o.Health = g
	return proxy.NewUpstream(o, loops)
}

// upstreamClientTLS returns the client TLS configuration of an upstream of
// https:// servers, from its tls section (defaults without one).
func upstreamClientTLS(cu *config.Upstream) (*tls.Config, error) {
	t := cu.TLS
	if t == nil {
		t = &config.UpstreamTLS{}
		t.SetDefaults()
	}
	return tlsterm.ClientConfig(tlsterm.ClientFiles{CA: t.CA, Cert: t.Cert, Key: t.Key, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, ALPN: t.ALPN})
}
