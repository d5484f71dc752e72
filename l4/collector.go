package l4

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the counters of tcp proxies and of the PROXY protocol gates
// of HTTP listeners as Prometheus metrics. A proxy is labelled tcp by its name
// (Options.Name: the entry's first listen address), a gate listen by the
// address of its listener.
type Collector struct {
	// Proxies returns the proxies to export.
	Proxies func() []*Proxy
	// Gates returns the gates to export, with the label of each.
	Gates func() []NamedGate
}

// NamedGate is a Gate with its metrics label.
type NamedGate struct {
	Listen string
	Gate   *Gate
}

var _ prometheus.Collector = (*Collector)(nil)

var (
	tcpLabel         = []string{"tcp"}
	descAccepted     = prometheus.NewDesc("gale_tcp_connections_total", "Client connections accepted by the tcp entry.", tcpLabel, nil)
	descActive       = prometheus.NewDesc("gale_tcp_connections_active", "Client connections open now (relaying, connecting or in their preamble).", tcpLabel, nil)
	descRelays       = prometheus.NewDesc("gale_tcp_relays_total", "Connections relayed: the upstream connected.", tcpLabel, nil)
	descClosed       = prometheus.NewDesc("gale_tcp_refused_total", "Client connections closed without a relay, by reason: over_limit (max_conns), bad_proxy (missing, malformed or late PROXY header), bad_hello (missing, malformed or oversized TLS ClientHello), no_route (no SNI route), upstream_failed (no upstream server connected).", []string{"tcp", "reason"}, nil)
	descMoved        = prometheus.NewDesc("gale_tcp_moved_bytes_total", "Bytes relayed, both directions, by path: copy (through user space) or splice (kernel pipes). Counted as they move.", []string{"tcp", "path"}, nil)
	descDirection    = prometheus.NewDesc("gale_tcp_bytes_total", "Bytes relayed by direction (to_upstream, to_client), counted when each relay ends.", []string{"tcp", "direction"}, nil)
	descBackpressure = prometheus.NewDesc("gale_tcp_backpressure_total", "Times a side of a relay was paused because the other had not sent its bytes on yet.", tcpLabel, nil)
	descConnectFail  = prometheus.NewDesc("gale_tcp_connect_failures_total", "Failed connects to an upstream server (refused, timed out, unreachable), each try.", []string{"tcp", "server"}, nil)
	descGate         = prometheus.NewDesc("gale_accept_proxy_connections_total", "Connections to an accept_proxy HTTP listener, by result: accepted (header read), passed (untrusted source, not parsed), bad_header (closed for a malformed, missing or late header).", []string{"listen", "result"}, nil)
)

// Describe sends the metric descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAccepted, descActive, descRelays, descClosed, descMoved, descDirection, descBackpressure, descConnectFail, descGate} {
		ch <- d
	}
}

// Collect sends the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	if c.Proxies != nil {
		for _, px := range c.Proxies() {
			s, name := px.Stats(), px.opt.Name
			counter(descAccepted, s.Accepted, name)
			ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(s.Active), name)
			counter(descRelays, s.Relays, name)
			for _, r := range [...]struct {
				why string
				n   uint64
			}{{"over_limit", s.OverLimit}, {"bad_proxy", s.BadProxy}, {"bad_hello", s.BadHello}, {"no_route", s.NoRoute}, {"upstream_failed", s.UpstreamFailed}} {
				counter(descClosed, r.n, name, r.why)
			}
			counter(descMoved, s.Copied, name, "copy")
			counter(descMoved, s.Spliced, name, "splice")
			counter(descDirection, s.ToUpstream, name, "to_upstream")
			counter(descDirection, s.ToClient, name, "to_client")
			counter(descBackpressure, s.Backpressure, name)
			for srv, n := range px.connectFailures() {
				counter(descConnectFail, n, name, srv)
			}
		}
	}
	if c.Gates != nil {
		for _, g := range c.Gates() {
			s := g.Gate.Stats()
			counter(descGate, s.Accepted, g.Listen, "accepted")
			counter(descGate, s.Passed, g.Listen, "passed")
			counter(descGate, s.BadProxy, g.Listen, "bad_header")
		}
	}
}

// connectFailures sums the failed connects of the proxy's groups by server
// address (a server in two groups of the entry is one series).
func (px *Proxy) connectFailures() map[string]uint64 {
	out := map[string]uint64{}
	seen := map[*Group]bool{}
	add := func(b Balancer) {
		g, ok := b.(*Group)
		if !ok || seen[g] {
			return
		}
		seen[g] = true
		for i, n := range g.ConnectFailures() {
			out[g.servers[i].String()] += n
		}
	}
	add(px.opt.Upstreams)
	for _, b := range px.opt.SNI {
		add(b)
	}
	return out
}
