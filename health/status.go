package health

// ServerStatus is one server's state as the admin API shows it.
type ServerStatus struct {
	Index       int    `json:"index"`
	Address     string `json:"address"`
	Name        string `json:"name"`
	Weight      int    `json:"weight"`
	Healthy     bool   `json:"healthy"` // takes new requests
	Down        bool   `json:"down"`    // failed its active checks
	Ejected     bool   `json:"ejected"` // ejected by outlier detection
	Drained     bool   `json:"drained"`
	Breaker     string `json:"breaker"` // closed, open or half-open
	InFlight    int64  `json:"in_flight"`
	Connections int64  `json:"connections"`
	Pending     int64  `json:"pending"`
	Requests    uint64 `json:"requests"`
	Failures    uint64 `json:"failures"`
	Overflows   uint64 `json:"overflows"` // attempts refused by a limit
	Ejections   uint64 `json:"ejections"`
	ChecksOK    uint64 `json:"checks_passed"`
	ChecksFail  uint64 `json:"checks_failed"`
	LastCheck   string `json:"last_check,omitempty"`
	Transitions uint64 `json:"transitions"` // changes between taking and not taking requests
	// LatencyEWMA is the moving average of the proxy's attempts on the server
	// (admission to the end of the response), in milliseconds; absent before the
	// first one.
	LatencyEWMA *float64 `json:"latency_ewma_ms,omitempty"`
}

// GroupStatus is a group's state as the admin API shows it.
type GroupStatus struct {
	Name    string         `json:"name"`
	Checks  string         `json:"checks,omitempty"` // tcp, http or "" (none)
	Servers []ServerStatus `json:"servers"`
}

// Status returns a snapshot of the group's state; safe from any goroutine.
func (g *Group) Status() GroupStatus {
	st := GroupStatus{Name: g.opts.Name}
	if c := g.opts.Check; c != nil {
		st.Checks = c.Type
	}
	for i := range g.srv {
		s := &g.srv[i]
		f := s.flags.Load()
		ss := ServerStatus{
			Index: i, Address: s.addr.String(), Name: s.name, Weight: int(s.weight.Load()),
			Healthy: f == 0, Down: f&fDown != 0, Ejected: f&fEjected != 0, Drained: f&fDrained != 0,
			Breaker: s.breaker.State().String(), InFlight: s.inFlight.Load(), Connections: s.conns.Load(),
			Pending: s.pending.Load(), Requests: s.requests.Load(), Failures: s.failures.Load(),
			Overflows: s.overflows.Load(), Ejections: s.ejectionsTotal.Load(), ChecksOK: s.checksOK.Load(),
			ChecksFail: s.checksFailed.Load(), Transitions: s.transitions.Load(),
		}
		if e := s.ewma.Load(); e > 0 {
			ms := float64(e) / 1e6
			ss.LatencyEWMA = &ms
		}
		if lc := s.lastCheck.Load(); lc != nil {
			ss.LastCheck = *lc
		}
		st.Servers = append(st.Servers, ss)
	}
	return st
}
