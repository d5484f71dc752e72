package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Features are the Prometheus collectors of other packages (upstream health,
// the layer-4 proxy and its PROXY protocol gates), which count per process.
// Their counters become instance totals like this package's: Samples, one of
// the Process's extras, publishes them into the process's table, and the
// admin's Collector answers each counter series summed over every process's
// table (a restarted worker continuing from its predecessor), so that a
// counter never goes back whichever worker process answers a scrape. Their
// gauges (a server's health, relays open now) stay the answering process's.
type Features struct {
	reg *prometheus.Registry
}

// NewFeatures returns the features of the collectors cs.
func NewFeatures(cs ...prometheus.Collector) *Features {
	reg := prometheus.NewRegistry()
	reg.MustRegister(cs...)
	return &Features{reg: reg}
}

// gather returns the collectors' current families; a collector's error
// leaves out only what it failed to give.
func (f *Features) gather() []*dto.MetricFamily {
	fams, _ := f.reg.Gather()
	return fams
}

// labelPairs returns the label names and name/value pairs of m, in the
// (sorted) order the registry gives them.
func labelPairs(m *dto.Metric) (names, kv []string) {
	for _, l := range m.GetLabel() {
		names = append(names, l.GetName())
		kv = append(kv, l.GetName(), l.GetValue())
	}
	return names, kv
}

// Samples adds the collectors' counters, for an Extra.
func (f *Features) Samples(add func(Sample)) {
	for _, fam := range f.gather() {
		if fam.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range fam.GetMetric() {
			_, kv := labelPairs(m)
			add(Sample{key(fam.GetName(), kv...), uint64(m.GetCounter().GetValue())})
		}
	}
}

// Describe sends the collectors' descriptions.
func (f *Features) Describe(ch chan<- *prometheus.Desc) { f.reg.Describe(ch) }

// counterFamily is what a counter family of the features looks like.
type counterFamily struct {
	desc  *prometheus.Desc
	names []string
}

// collect sends the features' gauges as this process has them and their
// counters' series from the instance's totals t.
func (f *Features) collect(t Totals, ch chan<- prometheus.Metric) {
	counters := map[string]counterFamily{}
	for _, fam := range f.gather() {
		for _, m := range fam.GetMetric() {
			names, kv := labelPairs(m)
			desc := prometheus.NewDesc(fam.GetName(), fam.GetHelp(), names, nil)
			if fam.GetType() == dto.MetricType_COUNTER {
				counters[fam.GetName()] = counterFamily{desc, names}
				continue
			}
			vals := make([]string, 0, len(names))
			for i := 1; i < len(kv); i += 2 {
				vals = append(vals, kv[i])
			}
			v := m.GetUntyped().GetValue()
			if g := m.GetGauge(); g != nil {
				v = g.GetValue()
			}
			if mt, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, v, vals...); err == nil {
				ch <- mt
			}
		}
	}
	for k, v := range t {
		cf, ok := counters[family(k)]
		if !ok {
			continue
		}
		ls := labels(k)
		if len(ls) != len(cf.names) {
			continue
		}
		vals := make([]string, len(ls))
		for i, l := range ls {
			if l[0] != cf.names[i] {
				vals = nil
				break
			}
			vals[i] = l[1]
		}
		if vals == nil {
			continue
		}
		if mt, err := prometheus.NewConstMetric(cf.desc, prometheus.CounterValue, float64(v), vals...); err == nil {
			ch <- mt
		}
	}
}
