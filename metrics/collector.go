package metrics

import (
	"runtime"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is reported by gale_build_info; cmd/gale sets it at start.
var Version = "dev"

// family descriptions: help text, type and variable labels of every family
// the collector emits.
type famDesc struct {
	help   string
	kind   prometheus.ValueType
	labels []string
}

var families = map[string]famDesc{
	famRequests:     {"Responses by server, route and status class.", prometheus.CounterValue, []string{"server", "route", "code_class"}},
	famBadRequests:  {"Requests refused by the protocol layer (malformed, too large, too slow) before any route.", prometheus.CounterValue, nil},
	famAccepted:     {"Connections accepted.", prometheus.CounterValue, nil},
	famClosed:       {"Connections closed.", prometheus.CounterValue, nil},
	famConnections:  {"Open client connections by state: reading a request head, writing (a request in progress), waiting (idle keep-alive).", prometheus.GaugeValue, []string{"state"}},
	famAcceptPauses: {"Times accepting paused because the process ran out of file descriptors.", prometheus.CounterValue, nil},
	famBytesIn:      {"Bytes read from client sockets.", prometheus.CounterValue, nil},
	famBytesOut:     {"Bytes written to client sockets, sendfile included.", prometheus.CounterValue, nil},
	famLoops:        {"Event loops running in all worker processes.", prometheus.GaugeValue, nil},
	famLogLines:     {"Access log lines written.", prometheus.CounterValue, []string{"server"}},
	famLogDropped:   {"Access log lines dropped because the writer fell behind (a stalled disk).", prometheus.CounterValue, []string{"server"}},
	famPubSubTopics: {"Pub/sub topics known, by hub.", prometheus.GaugeValue, []string{"hub"}},
	famPubSubSubs:   {"Pub/sub subscriptions, over every topic, by hub (per-topic counts: GET …/presence).", prometheus.GaugeValue, []string{"hub"}},
	famPubSubMsgs:   {"Pub/sub messages by hub and event: published, delivered (frames queued to subscribers, recovered ones included), dropped (slow subscribers, drop_oldest), closed (slow subscribers closed).", prometheus.CounterValue, []string{"hub", "event"}},
	famH2Conns:      {"Open HTTP/2 connections.", prometheus.GaugeValue, nil},
	famH2ConnsTotal: {"HTTP/2 connections started (prior knowledge, Upgrade: h2c, ALPN h2).", prometheus.CounterValue, nil},
	famH2Streams:    {"HTTP/2 streams accepted (refused streams excluded).", prometheus.CounterValue, nil},
	famH2Resets:     {"HTTP/2 RST_STREAM frames: received (from clients, for open streams) and sent.", prometheus.CounterValue, []string{"direction"}},
	famH2GoAways:    {"HTTP/2 GOAWAY frames sent, by error code (a graceful shutdown sends two NO_ERROR).", prometheus.CounterValue, []string{"code"}},
	famH2Glitches:   {"HTTP/2 limits tripped and rules broken by clients, by kind (a flood kind counts the connections it cut off).", prometheus.CounterValue, []string{"kind"}},
	famTLS:          {"TLS handshakes by result: ok, failed (bad input or alert), timeout (the handshake timeout), refused (the handshake pool was full).", prometheus.CounterValue, []string{"result"}},
}

var (
	descDuration = prometheus.NewDesc(famDuration, "Time from routing a request to the end of its response, by server and route.",
		[]string{"server", "route"}, nil)
	descProcesses = prometheus.NewDesc("gale_worker_processes", "Worker processes whose numbers this scrape adds up.", nil, nil)
	descBuild     = prometheus.NewDesc("gale_build_info", "Always 1; the labels tell the gale and Go versions.", []string{"version", "goversion"}, nil)
	descs         = func() map[string]*prometheus.Desc {
		m := map[string]*prometheus.Desc{}
		for name, f := range families {
			m[name] = prometheus.NewDesc(name, f.help, f.labels, nil)
		}
		return m
	}()
)

// Collector is a prometheus.Collector over a Process: each scrape reads the
// loops' counters and the other processes' tables. Between scrapes it keeps
// only what each series key parses to (the keys of an instance change only
// on reload), so a scrape does not split label strings again.
type Collector struct {
	p        *Process
	features *Features // nil when none

	mu     sync.Mutex            // guards parsed; scrapes may run concurrently
	parsed map[string]*seriesKey // series key -> what it names
}

var _ prometheus.Collector = (*Collector)(nil)

// seriesKey is a parsed series key.
type seriesKey struct {
	fam           string
	desc          *prometheus.Desc // nil for the histogram parts and unknown families
	kind          prometheus.ValueType
	vals          []string // label values, in the family's label order
	server, route string   // for the histogram parts
	le            float64
	inf           bool // a +Inf bucket
}

// NewCollector returns the collector of p.
func NewCollector(p *Process) *Collector { return &Collector{p: p, parsed: map[string]*seriesKey{}} }

// WithFeatures has c answer the metrics of f too, their counters summed over
// the instance's processes; f.Samples must be among p's extras. It returns c.
func (c *Collector) WithFeatures(f *Features) *Collector {
	c.features = f
	return c
}

// parse returns what key names, from the cache or parsed now; ok is false
// for a key this collector does not emit.
func (c *Collector) parse(k string) (*seriesKey, bool) {
	if sk, ok := c.parsed[k]; ok {
		return sk, sk.fam != ""
	}
	sk := &seriesKey{}
	fam, ls := family(k), labels(k)
	switch fam {
	case famBucket:
		if len(ls) == 3 {
			sk.fam, sk.server, sk.route = fam, ls[0][1], ls[1][1]
			le, ok := parseLe(ls[2][1])
			sk.le, sk.inf = le, !ok
		}
	case famSumNs:
		if len(ls) == 2 {
			sk.fam, sk.server, sk.route = fam, ls[0][1], ls[1][1]
		}
	default:
		if d, ok := descs[fam]; ok && len(ls) == len(families[fam].labels) {
			sk.fam, sk.desc, sk.kind = fam, d, families[fam].kind
			sk.vals = make([]string, len(ls))
			for i, l := range ls {
				sk.vals[i] = l[1]
			}
		}
	}
	c.parsed[k] = sk
	return sk, sk.fam != ""
}

// Describe sends the fixed descriptors.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
	ch <- descDuration
	ch <- descProcesses
	ch <- descBuild
	if c.features != nil {
		c.features.Describe(ch)
	}
}

// histo is one route's histogram being assembled from bucket samples.
type histo struct {
	server, route string
	bounds        []float64
	counts        []uint64 // by bound, non-cumulative
	inf           uint64
	sumNs         uint64
}

// Collect emits the instance's totals.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	t, procs := c.p.Instance()
	c.mu.Lock()
	if len(c.parsed) > 2*len(t)+64 {
		c.parsed = make(map[string]*seriesKey, len(t)) // routes went away in a reload
	}
	hs := map[[2]string]*histo{}
	get := func(server, route string) *histo {
		k := [2]string{server, route}
		h := hs[k]
		if h == nil {
			h = &histo{server: server, route: route}
			hs[k] = h
		}
		return h
	}
	var consts []prometheus.Metric
	for k, v := range t {
		sk, ok := c.parse(k)
		if !ok {
			continue
		}
		switch sk.fam {
		case famBucket:
			h := get(sk.server, sk.route)
			if sk.inf {
				h.inf += v
			} else {
				h.bounds = append(h.bounds, sk.le)
				h.counts = append(h.counts, v)
			}
		case famSumNs:
			get(sk.server, sk.route).sumNs += v
		default:
			consts = append(consts, prometheus.MustNewConstMetric(sk.desc, sk.kind, float64(v), sk.vals...))
		}
	}
	c.mu.Unlock()
	for _, m := range consts {
		ch <- m
	}
	for _, h := range hs {
		ch <- h.metric()
	}
	if c.features != nil {
		c.features.collect(t, ch)
	}
	ch <- prometheus.MustNewConstMetric(descProcesses, prometheus.GaugeValue, float64(procs))
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, Version, runtime.Version())
}

// metric turns the assembled buckets into a constant histogram.
func (h *histo) metric() prometheus.Metric {
	idx := make([]int, len(h.bounds))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return h.bounds[idx[a]] < h.bounds[idx[b]] })
	cum := map[float64]uint64{}
	var n uint64
	for _, i := range idx {
		n += h.counts[i]
		cum[h.bounds[i]] = n
	}
	n += h.inf
	return prometheus.MustNewConstHistogram(descDuration, n, float64(h.sumNs)/1e9, cum, h.server, h.route)
}
