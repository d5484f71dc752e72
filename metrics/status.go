package metrics

import (
	"sort"
	"time"
)

// Status is the document /status.json serves; docs/observability.md lists
// its fields. Counters are the instance's cumulative totals: a client
// derives rates from two polls.
type Status struct {
	Version     string            `json:"version"`
	Time        time.Time         `json:"time"`
	Started     time.Time         `json:"started"`
	Processes   int               `json:"processes"`
	EventLoops  uint64            `json:"event_loops"`
	Requests    uint64            `json:"requests"`
	BadRequests uint64            `json:"bad_requests"`
	Accepted    uint64            `json:"accepted"`
	Connections map[string]uint64 `json:"connections"` // reading, writing, waiting
	BytesIn     uint64            `json:"bytes_in"`
	BytesOut    uint64            `json:"bytes_out"`
	Pauses      uint64            `json:"accept_pauses"`
	LogDropped  uint64            `json:"access_log_dropped"`
	Routes      []RouteStatus     `json:"routes"`
	Info
}

// RouteStatus is one route's line of the status.
type RouteStatus struct {
	Server   string            `json:"server"`
	Route    string            `json:"route"`
	Requests uint64            `json:"requests"`
	Classes  map[string]uint64 `json:"classes"` // by code class
	// MeanMs is the mean response time in milliseconds since start.
	MeanMs float64 `json:"mean_ms"`
}

// fill copies the totals into the status.
func (s *Status) fill(t Totals) {
	routes := map[[2]string]*RouteStatus{}
	count := map[[2]string]uint64{}
	sums := map[[2]string]uint64{}
	route := func(ls [][2]string) *RouteStatus {
		k := [2]string{ls[0][1], ls[1][1]}
		r := routes[k]
		if r == nil {
			r = &RouteStatus{Server: k[0], Route: k[1], Classes: map[string]uint64{}}
			routes[k] = r
		}
		return r
	}
	plain := map[string]*uint64{
		famBadRequests: &s.BadRequests, famAccepted: &s.Accepted, famBytesIn: &s.BytesIn, famBytesOut: &s.BytesOut,
		famAcceptPauses: &s.Pauses, famLoops: &s.EventLoops, famLogDropped: &s.LogDropped,
	}
	for k, v := range t {
		if p, ok := plain[family(k)]; ok {
			*p += v
			continue
		}
		ls := labels(k)
		switch family(k) {
		case famRequests:
			if len(ls) == 3 {
				r := route(ls)
				r.Requests += v
				r.Classes[ls[2][1]] += v
				s.Requests += v
			}
		case famBucket:
			if len(ls) == 3 {
				count[[2]string{ls[0][1], ls[1][1]}] += v
			}
		case famSumNs:
			if len(ls) == 2 {
				sums[[2]string{ls[0][1], ls[1][1]}] += v
			}
		case famConnections:
			if len(ls) == 1 {
				s.Connections[ls[0][1]] += v
			}
		}
	}
	for k, r := range routes {
		if n := count[k]; n > 0 {
			r.MeanMs = float64(sums[k]) / float64(n) / 1e6
		}
		s.Routes = append(s.Routes, *r)
	}
	sort.Slice(s.Routes, func(i, j int) bool {
		a, b := s.Routes[i], s.Routes[j]
		return a.Server < b.Server || a.Server == b.Server && a.Route < b.Route
	})
}

// NewStatus returns the status of totals (without the daemon's Info),
// for gale status --watch, which reads the tables itself.
func NewStatus(t Totals) Status {
	s := Status{Connections: map[string]uint64{}}
	s.fill(t)
	return s
}
