package metrics

import (
	"maps"
	"sync"

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
//
// A reload may rebuild what a collector reads (an upstream whose health
// settings changed gets a new group, counting from zero) or remove it, so
// Samples keeps each counter series of the process monotonic itself: a value
// lower than the last one seen continues from it, and a series that is gone
// keeps its last value, as the routes' counters do in the Registry.
type Features struct {
	reg *prometheus.Registry

	mu       sync.Mutex // guards counters, gen and families; the publisher and scrapes run at once
	counters map[string]*featureCounter
	gen      uint64
	families map[string]counterFamily // every counter family collect has seen
}

// featureCounter is what Samples publishes for one counter series: base plus
// the collector's current value, last.
type featureCounter struct {
	base, last uint64
	gen        uint64 // the Samples call that last saw the series
}

// NewFeatures returns the features of the collectors cs.
func NewFeatures(cs ...prometheus.Collector) *Features {
	reg := prometheus.NewRegistry()
	reg.MustRegister(cs...)
	return &Features{reg: reg, counters: map[string]*featureCounter{}}
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

// Samples adds the collectors' counters, for an Extra: each series never below
// what it was at the last call, and the series seen before and gone now with
// the values they had.
func (f *Features) Samples(add func(Sample)) {
	fams := f.gather()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	for _, fam := range fams {
		if fam.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range fam.GetMetric() {
			_, kv := labelPairs(m)
			k := key(fam.GetName(), kv...)
			v := uint64(m.GetCounter().GetValue())
			c := f.counters[k]
			if c == nil {
				c = &featureCounter{}
				f.counters[k] = c
			}
			if v < c.last { // counting again from zero: a reload rebuilt what the collector reads
				c.base += c.last
			}
			c.last, c.gen = v, f.gen
			add(Sample{k, c.base + v})
		}
	}
	for k, c := range f.counters {
		if c.gen != f.gen { // removed by a reload; a series of that name again continues from here
			c.base, c.last = c.base+c.last, 0
			add(Sample{k, c.base})
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
	f.mu.Lock()
	if f.families == nil {
		f.families = map[string]counterFamily{}
	}
	for name, cf := range counters {
		f.families[name] = cf
	}
	counters = maps.Clone(f.families) // a family gone from the collectors keeps the series Samples keeps
	f.mu.Unlock()
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
