package app

import (
	"net/netip"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/l4"
)

// tcpHealthFor returns the l4.HealthFunc of the tcp entries: a named group with
// health settings gets one health group for all the entries that use it
// (built, from cu, the first time; built holds them by name), named "tcp:NAME"
// so that it stands apart from the group the same upstream has for HTTP proxy
// routes. The groups are appended to a.tcpHealth, which startTCPHealth starts.
// Runs in New, before the engine serves.
func (a *App) tcpHealthFor(cfg *config.Config, built map[string]*health.Group) l4.HealthFunc {
	return func(name string, cu *config.Upstream, servers []netip.AddrPort) (*health.Group, error) {
		if g, ok := built[name]; ok {
			return g, nil
		}
		if !hasHealth(cu) {
			built[name] = nil
			return nil, nil
		}
		// The relay's balancers are built once, so the admin API may not change
		// the weights (FixedWeights).
		ho := health.Options{Name: "tcp:" + name, Servers: servers, Logger: a.log, FixedWeights: "tcp"}
		for _, s := range cu.Servers {
			ho.Weights = append(ho.Weights, s.Weight)
			ho.Names = append(ho.Names, s.Address)
		}
		if err := healthSettings(cu, &ho); err != nil {
			return nil, err
		}
		if _, https := cu.Servers[0].Endpoint(); https {
			// The servers speak TLS (the relay passes the client's bytes as they
			// are): checks connect through TLS, verified with the tls section.
			c, err := upstreamClientTLS(cu)
			if err != nil {
				return nil, err
			}
			handshake := 5 * time.Second
			if ho.Check != nil {
				handshake = ho.Check.Timeout
			}
			if ho.Dial, err = checkDialer(cfg.Loops(), c, handshake); err != nil {
				return nil, err
			}
			if ho.Check != nil {
				ho.Check.TLS = true
			}
		}
		g, err := health.New(ho)
		if err != nil {
			return nil, err
		}
		built[name] = g
		a.tcpHealth = append(a.tcpHealth, g)
		return g, nil
	}
}

// startTCPHealth starts the tcp groups' checks and timers on the first loop
// (one checker per group for the process).
func (a *App) startTCPHealth() {
	home := a.srv.Engine().Loops()[0]
	for _, g := range a.tcpHealth {
		g.Start(home)
	}
}
