package health

import "github.com/prometheus/client_golang/prometheus"

// Collector exports every group's server state as Prometheus metrics, labelled
// by upstream and server. In a multi-process instance each worker process runs
// its own groups: the daemon hands the collector to metrics.Features, which sums
// its counters over the processes and answers its gauges from the answering one.
type Collector struct {
	// Groups returns the running configuration's groups.
	Groups func() []*Group
}

var _ prometheus.Collector = (*Collector)(nil)

var (
	labels          = []string{"upstream", "server"}
	descHealthy     = prometheus.NewDesc("gale_upstream_server_healthy", "1 while the server takes new requests (not down, ejected, open or drained).", labels, nil)
	descTransitions = prometheus.NewDesc("gale_upstream_server_transitions_total", "Changes between taking and not taking new requests.", labels, nil)
	descEjections   = prometheus.NewDesc("gale_upstream_server_ejections_total", "Ejections by outlier detection.", labels, nil)
	descChecks      = prometheus.NewDesc("gale_upstream_server_checks_total", "Active health checks by result.", append(labels, "result"), nil)
	descOverflows   = prometheus.NewDesc("gale_upstream_server_overflows_total", "Attempts refused by max_connections, max_pending or max_in_flight.", labels, nil)
	descInFlight    = prometheus.NewDesc("gale_upstream_server_in_flight", "Requests in flight to the server.", labels, nil)
	descBreaker     = prometheus.NewDesc("gale_upstream_server_breaker_open", "1 while the server's circuit breaker is open, 0.5 half-open, 0 closed.", labels, nil)
)

// Describe sends the metric descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHealthy, descTransitions, descEjections, descChecks, descOverflows, descInFlight, descBreaker} {
		ch <- d
	}
}

// Collect sends the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.Groups() {
		for _, s := range g.Status().Servers {
			lv := []string{g.Name(), s.Address}
			healthy := 0.0
			if s.Healthy {
				healthy = 1
			}
			br := map[string]float64{"open": 1, "half-open": 0.5}[s.Breaker]
			ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, healthy, lv...)
			ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(s.Transitions), lv...)
			ch <- prometheus.MustNewConstMetric(descEjections, prometheus.CounterValue, float64(s.Ejections), lv...)
			ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(s.ChecksOK), append(lv, "passed")...)
			ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(s.ChecksFail), append(lv, "failed")...)
			ch <- prometheus.MustNewConstMetric(descOverflows, prometheus.CounterValue, float64(s.Overflows), lv...)
			ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(s.InFlight), lv...)
			ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, br, lv...)
		}
	}
}
