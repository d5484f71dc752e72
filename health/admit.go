package health

import "time"

// Verdict is Admit's answer.
type Verdict uint8

// Verdicts.
const (
	// Admitted: the attempt may go to the server; it must end with Done, given
	// the Ticket Admit returned.
	Admitted Verdict = iota
	// OverLimit: a limit (max_in_flight, max_connections, max_pending) is reached.
	OverLimit
	// BreakerRefused: the server's breaker is open or its half-open probes are taken.
	BreakerRefused
)

// Admit decides whether an attempt may go to server i now. idle says whether the
// caller has an idle pooled connection to it (then no new connection is needed
// and the connection limits do not apply). Limits are checked with the counters
// of every loop; two loops admitting at the same instant may pass a limit by one
// each. Idle pooled connections (ConnPooled) do not count against
// max_connections, as with nginx's max_conns: the pools are per loop, and
// counting them refused a loop without one while the server sat idle with
// connections pooled on the other loops. Over a limit the overflow is counted.
// An admitted attempt's Ticket (its breaker's state at admission) goes back to
// Done with the outcome.
func (g *Group) Admit(i int, idle bool) (Verdict, Ticket) {
	s := &g.srv[i]
	l := &g.opts.Limits
	if l.MaxInFlight > 0 && s.inFlight.Load() >= int64(l.MaxInFlight) ||
		!idle && l.MaxConnections > 0 && s.conns.Load()-s.pooled.Load() >= int64(l.MaxConnections) ||
		!idle && l.MaxPending > 0 && s.pending.Load() >= int64(l.MaxPending) {
		s.overflows.Add(1)
		return OverLimit, 0
	}
	t, ok := s.breaker.Allow()
	if !ok {
		return BreakerRefused, 0
	}
	s.inFlight.Add(1)
	s.requests.Add(1)
	return Admitted, t
}

// Done ends an admitted attempt on server i with its outcome: status is the
// response status (0 when the exchange failed without one), t the ticket Admit
// returned.
func (g *Group) Done(i int, status int, o Outcome, t Ticket) {
	s := &g.srv[i]
	s.inFlight.Add(-1)
	s.breaker.Record(t, o)
	if o == Failed {
		s.failures.Add(1)
	}
	g.passive(i, status, o)
}

// ObserveLatency feeds the time an attempt on server i took (admission to the
// end of the response) to the server's latency EWMA (weight 1/8 per sample),
// which the admin API shows.
func (g *Group) ObserveLatency(i int, d time.Duration) {
	e := &g.srv[i].ewma
	for {
		old := e.Load()
		nw := int64(d)
		if old != 0 {
			nw = old + (int64(d)-old)/8
		}
		if e.CompareAndSwap(old, max(nw, 1)) {
			return
		}
	}
}

// ConnDialing counts a connect to server i that has started.
func (g *Group) ConnDialing(i int) {
	g.srv[i].conns.Add(1)
	g.srv[i].pending.Add(1)
}

// ConnPooled counts a connection to server i that went idle into a pool;
// ConnUnpooled one that left it (taken for a request, or closed).
func (g *Group) ConnPooled(i int) { g.srv[i].pooled.Add(1) }

// ConnUnpooled ends what ConnPooled counted.
func (g *Group) ConnUnpooled(i int) { g.srv[i].pooled.Add(-1) }

// ConnOpened counts a connect to server i that completed.
func (g *Group) ConnOpened(i int) { g.srv[i].pending.Add(-1) }

// ConnClosed counts a connection to server i that closed; opened says whether
// its connect had completed.
func (g *Group) ConnClosed(i int, opened bool) {
	g.srv[i].conns.Add(-1)
	if !opened {
		g.srv[i].pending.Add(-1)
	}
}

// breakerChanged returns server i's breaker callback: it logs the transition with
// its counts, marks the server unavailable while open and arms the timer that
// moves the breaker to half-open.
func (g *Group) breakerChanged(i int) func(BreakerChange) {
	return func(c BreakerChange) {
		s := &g.srv[i]
		args := []any{"server", s.name, "from", c.From.String(), "to", c.To.String(), "requests", c.Requests, "failures", c.Failures}
		// The line is written before the state is published, so that whoever sees
		// the new state finds its log line.
		g.mu.Lock()
		if c.To == Open {
			g.log.Warn("health: breaker transition", args...)
		} else {
			g.log.Info("health: breaker transition", args...)
		}
		g.setFlag(i, fOpen, c.To == Open)
		g.mu.Unlock()
		if c.To == Open {
			g.after(g.opts.Breaker.OpenFor, func() { s.breaker.State() })
		}
	}
}
