package app

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/proxy"
	"github.com/gale-server/gale/server"
)

// actionEnv is what building route actions needs beyond the route: the whole
// configuration, and the upstreams built so far (a named upstream is built once and
// shared by every route that uses it, so they share its connection pools).
type actionEnv struct {
	cfg       *config.Config
	upstreams map[string]*proxy.Upstream
	prev      *upstreamSet // the running configuration's upstreams (nil at start)
	set       *upstreamSet // the named upstreams built for cfg
}

func newActionEnv(cfg *config.Config, prev *upstreamSet) *actionEnv {
	set := newUpstreamSet()
	return &actionEnv{cfg: cfg, upstreams: set.byName, prev: prev, set: set}
}

// buildProxy turns a proxy action into its handler.
func (env *actionEnv) buildProxy(p *config.Proxy) (server.Handler, error) {
	var u *proxy.Upstream
	if p.Upstream != "" {
		if u = env.upstreams[p.Upstream]; u == nil {
			cu, ok := env.cfg.Upstreams[p.Upstream]
			if !ok {
				return nil, fmt.Errorf("proxy: no upstream named %q", p.Upstream)
			}
			if u = env.prev.reuse(p.Upstream, cu); u == nil {
				var err error
				if u, err = newUpstream(p.Upstream, cu, env.cfg.Loops()); err != nil {
					return nil, err
				}
			}
			env.upstreams[p.Upstream] = u
			env.set.conf[p.Upstream] = cu
		}
	} else {
		var err error
		if u, err = newUpstream("inline", p.InlineUpstream(), env.cfg.Loops()); err != nil {
			return nil, err
		}
	}
	r := proxy.Route{StripPrefix: p.StripPrefix, PreserveHost: p.PreserveHost, Via: p.Via}
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
	return proxy.New(u, r), nil
}

// newUpstream converts a configured upstream.
func newUpstream(name string, cu *config.Upstream, loops int) (*proxy.Upstream, error) {
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
		Logger: slog.Default(),
	}
	for _, s := range cu.Servers {
		ap, err := netip.ParseAddrPort(s.Address)
		if err != nil {
			return nil, fmt.Errorf("proxy: upstream %s: %w", name, err)
		}
		o.Servers = append(o.Servers, proxy.Server{Addr: ap, Weight: s.Weight})
	}
	g, err := healthGroup(name, cu, &o)
	if err != nil {
		return nil, fmt.Errorf("proxy: upstream %s: %w", name, err)
	}
	o.Health = g
	return proxy.NewUpstream(o, loops)
}
