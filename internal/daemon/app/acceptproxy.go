package app

import (
	"net/netip"
	"slices"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/l4"
	"github.com/gale-server/gale/server"
)

// acceptProxyOf maps every address of a server with accept_proxy (its listen
// and redirect_http addresses) to the networks that must send a PROXY header
// there. The config is validated, so the networks parse.
func acceptProxyOf(cfg *config.Config) map[string][]netip.Prefix {
	out := map[string][]netip.Prefix{}
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		nets, err := config.ParseCIDRs(s.AcceptProxy)
		if err != nil || len(nets) == 0 {
			continue
		}
		addrs := s.Listen
		if s.TLS != nil {
			addrs = append(addrs[:len(addrs):len(addrs)], s.TLS.RedirectHTTP...)
		}
		for _, addr := range addrs {
			out[addr] = nets
		}
	}
	return out
}

// acceptProxyChanged reports whether next asks for other accept_proxy networks
// than old on an address both serve: the gate of a running listener is made
// with it, so the change takes effect on restart or upgrade (addresses a
// reload adds get next's).
func acceptProxyChanged(old, next *config.Config) bool {
	before, after := acceptProxyOf(old), acceptProxyOf(next)
	inOld := httpAddrs(old)
	for addr := range httpAddrs(next) {
		if inOld[addr] && !slices.Equal(before[addr], after[addr]) {
			return true
		}
	}
	return false
}

// httpAddrs returns every listen and redirect_http address of cfg's servers.
func httpAddrs(cfg *config.Config) map[string]bool {
	out := map[string]bool{}
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		for _, a := range s.Listen {
			out[a] = true
		}
		if s.TLS != nil {
			for _, a := range s.TLS.RedirectHTTP {
				out[a] = true
			}
		}
	}
	return out
}

// gate runs listen, which makes one listener; with nets, the listener accepts
// through an l4.Gate that reads the PROXY header of connections from nets
// (bounded by the header timeout) before HTTP, TLS or HTTP/2 sees them. It runs
// where listeners are made (New, or reload under mu).
func (a *App) gate(cfg *config.Config, nets []netip.Prefix, listen func() (*server.Listener, error)) (*server.Listener, error) {
	if len(nets) == 0 {
		return listen()
	}
	a.srv.SetAcceptWrap(func(h engine.Handler) engine.Handler {
		g := l4.NewGate(h, l4.GateOptions{Trusted: nets, Timeout: cfg.Timeouts.Header, Logger: a.log})
		a.gates = append(a.gates, g)
		return g
	})
	defer a.srv.SetAcceptWrap(nil)
	n := len(a.gates)
	l, err := listen()
	if err != nil {
		a.gates = a.gates[:n]
		return l, err
	}
	for range a.gates[n:] {
		a.gateAddrs = append(a.gateAddrs, l.Addr)
	}
	return l, nil
}

// namedGates returns the gates with the address of each one's listener, for
// the metrics; safe from any goroutine.
func (a *App) namedGates() []l4.NamedGate {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]l4.NamedGate, len(a.gates))
	for i, g := range a.gates {
		out[i] = l4.NamedGate{Listen: a.gateAddrs[i], Gate: g}
	}
	return out
}

// ProxyGates returns the PROXY protocol readers of the accept_proxy listeners,
// in the order they were made.
func (a *App) ProxyGates() []*l4.Gate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*l4.Gate(nil), a.gates...)
}
