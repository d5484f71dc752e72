// Package metrics counts what gale serves and exposes it: per-loop counters
// that the event loops bump without locks or allocations, a table in shared
// memory through which every worker process publishes its numbers so that
// any of them can report the instance's totals, a Prometheus collector that
// reads both at scrape time, and the admin handler (/metrics, /status,
// /status.json, /healthz, /readyz). docs/observability.md lists the metrics.
package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// codeClasses are the values of the code_class label, by status/100; index 0
// is for statuses outside 100-599 (never produced by gale, kept for safety).
var codeClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Registry holds the counters of one process: one Route per configured
// server and route name. Routes are looked up by name, so a reload that
// keeps a route's name keeps its counters. The lock guards the route table
// only; it is taken when routers are built and at scrape time, never by the
// event loops.
type Registry struct {
	loops  int
	bounds []time.Duration // histogram upper bounds, increasing
	mu     sync.Mutex      // guards routes and order
	routes map[routeKey]*Route
	order  []*Route
}

type routeKey struct{ server, route string }

// NewRegistry returns a registry for a server with the given number of event
// loops and histogram buckets (upper bounds in increasing order).
func NewRegistry(loops int, buckets []time.Duration) *Registry {
	return &Registry{loops: max(loops, 1), bounds: append([]time.Duration(nil), buckets...), routes: map[routeKey]*Route{}}
}

// Loops returns the number of loops the registry counts for.
func (r *Registry) Loops() int { return r.loops }

// Buckets returns the histogram upper bounds.
func (r *Registry) Buckets() []time.Duration { return r.bounds }

// Route returns the counters of route in server, creating them on first use.
func (r *Registry) Route(server, route string) *Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := routeKey{server, route}
	if rt, ok := r.routes[k]; ok {
		return rt
	}
	rt := &Route{Server: server, Name: route, bounds: r.bounds, loops: make([]routeLoop, r.loops)}
	rt.keys = newRouteKeys(server, route, r.bounds)
	for i := range rt.loops {
		rt.loops[i].buckets = make([]atomic.Uint64, len(r.bounds)+1)
	}
	r.routes[k] = rt
	r.order = append(r.order, rt)
	return rt
}

// Routes returns every route created so far, in creation order.
func (r *Registry) Routes() []*Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Route(nil), r.order...)
}

// Route is the counters of one route, one set per loop. Each set is written
// only by its loop (single writer: plain atomic load and store, no locked
// instruction) and read by any goroutine.
type Route struct {
	Server, Name string
	bounds       []time.Duration
	loops        []routeLoop // index: loop ID
	keys         routeKeys   // series keys, built once
}

// routeKeys are the series keys of one route, built when the route is made
// so that publishing and scraping do not format them again.
type routeKeys struct {
	codes   [len(codeClasses)]string
	buckets []string // by bucket; the last is +Inf
	sum     string
}

func newRouteKeys(server, route string, bounds []time.Duration) routeKeys {
	var k routeKeys
	for c := range k.codes {
		k.codes[c] = key(famRequests, "server", server, "route", route, "code_class", codeClasses[c])
	}
	k.buckets = make([]string, len(bounds)+1)
	for i := range k.buckets {
		le := "+Inf"
		if i < len(bounds) {
			le = formatLe(bounds[i])
		}
		k.buckets[i] = key(famBucket, "server", server, "route", route, "le", le)
	}
	k.sum = key(famSumNs, "server", server, "route", route)
	return k
}

// routeLoop is one loop's counters of a route. The padding keeps two loops'
// counters off one cache line.
type routeLoop struct {
	codes   [len(codeClasses)]atomic.Uint64 // responses by status class
	sumNs   atomic.Uint64                   // total duration in nanoseconds
	buckets []atomic.Uint64                 // non-cumulative; the last is +Inf
	_       [64]byte
}

// bump adds n to a counter that only the calling loop writes.
func bump(c *atomic.Uint64, n uint64) { c.Store(c.Load() + n) }

// Observe counts one response with status after d, on loop. It must be
// called on that loop (or by one goroutine per loop index); it neither locks
// nor allocates.
func (rt *Route) Observe(loop, status int, d time.Duration) {
	if loop < 0 || loop >= len(rt.loops) {
		loop = 0
	}
	l := &rt.loops[loop]
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	bump(&l.codes[class], 1)
	if d < 0 {
		d = 0
	}
	bump(&l.sumNs, uint64(d))
	i := 0
	for i < len(rt.bounds) && d > rt.bounds[i] {
		i++
	}
	bump(&l.buckets[i], 1)
}

// RouteTotals are a route's counters summed over loops.
type RouteTotals struct {
	Codes   [len(codeClasses)]uint64
	SumNs   uint64
	Buckets []uint64 // non-cumulative, len(bounds)+1
}

// Requests returns the number of responses counted.
func (t *RouteTotals) Requests() uint64 {
	var n uint64
	for _, c := range t.Codes {
		n += c
	}
	return n
}

// Totals sums the route's loops.
func (rt *Route) Totals() RouteTotals {
	t := RouteTotals{Buckets: make([]uint64, len(rt.bounds)+1)}
	for i := range rt.loops {
		l := &rt.loops[i]
		for c := range l.codes {
			t.Codes[c] += l.codes[c].Load()
		}
		t.SumNs += l.sumNs.Load()
		for b := range l.buckets {
			t.Buckets[b] += l.buckets[b].Load()
		}
	}
	return t
}

// formatLe renders a bucket bound as the le label: seconds, shortest form.
func formatLe(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'g', -1, 64)
}
