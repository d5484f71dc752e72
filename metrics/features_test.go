//go:build unix

package metrics

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gale-server/gale/server"
	"github.com/prometheus/client_golang/prometheus"
)

// TestFeatureCountersSummedOverProcesses: the counters of a feature's collector
// (the layer-4 proxy's, upstream health's) are the instance's, summed over the
// worker processes whichever one answers, and never go back from one scrape to
// the next; its gauges are the answering process's. They used to be the
// answering process's alone: with processes: 2, gale_tcp_connections_total read
// 24 then 23 as scrapes reached one worker and then the other.
func TestFeatureCountersSummedOverProcesses(t *testing.T) {
	stats := filepath.Join(t.TempDir(), "gale.stats")
	type feature struct {
		conns  *prometheus.CounterVec
		active *prometheus.GaugeVec
	}
	procs := make([]*Process, 2)
	feats := make([]feature, 2)
	admins := make([]*prometheus.Registry, 2)
	for i := range procs {
		feats[i] = feature{
			conns:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gale_tcp_connections_total", Help: "c."}, []string{"tcp"}),
			active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gale_tcp_connections_active", Help: "a."}, []string{"tcp"}),
		}
		f := NewFeatures(feats[i].conns, feats[i].active)
		procs[i] = NewProcess(NewRegistry(1, nil), func() server.Stats { return server.Stats{} }, stats, i, os.Getpid())
		defer procs[i].table.Close()
		procs[i].SetExtras(f.Samples)
		admins[i] = prometheus.NewPedanticRegistry()
		admins[i].MustRegister(NewCollector(procs[i]).WithFeatures(f))
		feats[i].active.WithLabelValues(":5432").Set(float64(10 * (i + 1)))
		if err := procs[i].Publish(); err != nil {
			t.Fatal(err)
		}
	}
	scrape := func(i int) (conns, active float64) {
		mfs, err := admins[i].Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				switch mf.GetName() {
				case "gale_tcp_connections_total":
					conns = m.GetCounter().GetValue()
				case "gale_tcp_connections_active":
					active = m.GetGauge().GetValue()
				}
			}
		}
		return conns, active
	}
	var last float64
	var want [2]float64
	for step, s := range []struct{ event, scrape int }{{0, 0}, {1, 1}, {-1, 0}, {0, 1}, {1, 0}, {-1, 1}, {0, 0}} {
		if s.event >= 0 {
			feats[s.event].conns.WithLabelValues(":5432").Add(float64(s.event + 1)) // counted live, not published yet
			want[s.event] += float64(s.event + 1)
		}
		conns, active := scrape(s.scrape)
		if conns < last {
			t.Fatalf("step %d: process %d answers %v connections after %v", step, s.scrape, conns, last)
		}
		if active != float64(10*(s.scrape+1)) {
			t.Fatalf("step %d: process %d answers %v active, want its own %d", step, s.scrape, active, 10*(s.scrape+1))
		}
		last = conns
	}
	if total := want[0] + want[1]; last != total {
		t.Fatalf("last answer %v connections, want the sum over processes %v", last, total)
	}
}

// TestFeatureCountersSurviveRebuilds: a reload may rebuild what a feature's
// collector reads (an upstream whose health settings changed gets a new group,
// counting from zero) or remove it. The counters then continue from their last
// values instead of going back (gale_upstream_server_checks_total read 26, then
// 0 after a reload changed health_check.interval, which Prometheus takes for a
// counter reset), and a series removed keeps its value, like a removed route's.
func TestFeatureCountersSurviveRebuilds(t *testing.T) {
	stats := filepath.Join(t.TempDir(), "gale.stats")
	checks := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gale_upstream_server_checks_total", Help: "c."}, []string{"server"})
	f := NewFeatures(checks)
	p := NewProcess(NewRegistry(1, nil), func() server.Stats { return server.Stats{} }, stats, 0, os.Getpid())
	defer p.table.Close()
	p.SetExtras(f.Samples)
	admin := prometheus.NewPedanticRegistry()
	admin.MustRegister(NewCollector(p).WithFeatures(f))
	scrape := func() map[string]float64 {
		if err := p.Publish(); err != nil {
			t.Fatal(err)
		}
		mfs, err := admin.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "gale_upstream_server_checks_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
		return out
	}
	for step, s := range []struct {
		do   func()
		a, b float64
	}{
		{func() { checks.WithLabelValues("a").Add(5); checks.WithLabelValues("b").Add(3) }, 5, 3},
		{func() { checks.Reset(); checks.WithLabelValues("a").Add(2) }, 7, 3}, // rebuilt, b removed
		{func() { checks.WithLabelValues("a").Add(1) }, 8, 3},
		{func() { checks.Reset() }, 8, 3}, // the whole family gone
		{func() { checks.WithLabelValues("b").Add(1) }, 8, 4},
	} {
		s.do()
		got := scrape()
		if got["a"] != s.a || got["b"] != s.b || len(got) != 2 {
			t.Fatalf("step %d: %v, want a %v b %v", step, got, s.a, s.b)
		}
	}
}
