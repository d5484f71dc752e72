package health

import (
	"fmt"
	"time"
)

// OutlierOptions configure passive outlier detection (Envoy semantics): a server
// that answers Consecutive5xx 5xx responses in a row, or fails
// ConsecutiveGatewayFailure exchanges in a row (502, 503, 504, connect failure,
// reset, timeout), is ejected for BaseEjectionTime × its number of ejections, at
// most MaxEjectionTime; no more than MaxEjectionPercent of the servers are
// ejected at once (but one may always be, unless it is 0), and never the last
// available one. A returning server gets a
// growing share of picks over SlowStart.
type OutlierOptions struct {
	Consecutive5xx            int // 0 turns it off
	ConsecutiveGatewayFailure int // 0 turns it off
	BaseEjectionTime          time.Duration
	MaxEjectionTime           time.Duration
	MaxEjectionPercent        int
	SlowStart                 time.Duration // 0: full share at once
}

// Validate reports options that cannot work.
func (o *OutlierOptions) validate() error {
	if o.BaseEjectionTime <= 0 || o.MaxEjectionTime < o.BaseEjectionTime {
		return fmt.Errorf("outlier base_ejection_time must be positive and at most max_ejection_time")
	}
	if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
		return fmt.Errorf("outlier max_ejection_percent must be 0-100")
	}
	return nil
}

// passive feeds an outcome to outlier detection.
func (g *Group) passive(i int, status int, o Outcome) {
	od := g.opts.Outlier
	if od == nil || o == Cancelled {
		return
	}
	s := &g.srv[i]
	if s.flags.Load()&fEjected != 0 {
		// Requests sent before the ejection, ending during it: they say nothing
		// new, and counted they left a returning server a failure or two from
		// its next ejection.
		return
	}
	if o == Succeeded && status < 500 {
		if s.consec5xx.Load() != 0 {
			s.consec5xx.Store(0)
		}
		if s.consecGateway.Load() != 0 {
			s.consecGateway.Store(0)
		}
		return
	}
	n5 := s.consec5xx.Add(1)
	gateway := status == 0 || status == 502 || status == 503 || status == 504
	var ng int32
	if gateway {
		ng = s.consecGateway.Add(1)
	} else if s.consecGateway.Load() != 0 {
		s.consecGateway.Store(0)
	}
	switch {
	case od.Consecutive5xx > 0 && n5 == int32(od.Consecutive5xx):
		g.eject(i, "consecutive_5xx", int(n5))
	case od.ConsecutiveGatewayFailure > 0 && ng == int32(od.ConsecutiveGatewayFailure):
		g.eject(i, "consecutive_gateway_failure", int(ng))
	}
}

// eject ejects server i unless the ejection limits forbid it.
func (g *Group) eject(i int, why string, count int) {
	od := g.opts.Outlier
	s := &g.srv[i]
	g.mu.Lock()
	defer g.mu.Unlock()
	s.consec5xx.Store(0)
	s.consecGateway.Store(0)
	if s.flags.Load()&fEjected != 0 {
		return
	}
	ejected := 0
	for j := range g.srv {
		if g.srv[j].flags.Load()&fEjected != 0 {
			ejected++
		}
	}
	// As in Envoy, one server may be ejected whatever the share (10% of three
	// servers would otherwise allow none); max_ejection_percent 0 allows none.
	overShare := (ejected+1)*100 > od.MaxEjectionPercent*len(g.srv) && (ejected > 0 || od.MaxEjectionPercent == 0)
	if overShare || s.flags.Load() == 0 && g.available() <= 1 {
		g.log.Warn("health: outlier not ejected (ejection limit)", "server", s.name, "reason", why, "count", count,
			"ejected", ejected, "max_ejection_percent", od.MaxEjectionPercent)
		return
	}
	now := time.Now()
	// The multiplier decays: each ejection-time's worth of good behaviour since the
	// last return takes one ejection off.
	if !s.ejectedUntil.IsZero() && s.ejections > 0 {
		calm := now.Sub(s.ejectedUntil)
		s.ejections = max(s.ejections-int(calm/od.BaseEjectionTime), 0)
	}
	s.ejections++
	d := min(od.BaseEjectionTime*time.Duration(s.ejections), od.MaxEjectionTime)
	s.ejectedUntil = now.Add(d)
	s.ejectionsTotal.Add(1)
	g.log.Warn("health: server ejected", "server", s.name, "reason", why, "count", count, "for", d.String(), "ejections", s.ejections)
	g.setFlag(i, fEjected, true)
	g.after(d, func() { g.unEject(i) })
}

// unEject returns server i after its ejection time.
func (g *Group) unEject(i int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := &g.srv[i]
	if s.flags.Load()&fEjected == 0 {
		return
	}
	s.ejectedUntil = time.Now()
	s.consec5xx.Store(0)
	s.consecGateway.Store(0)
	g.log.Info("health: server returned after ejection", "server", s.name, "ejections", s.ejections)
	g.setFlag(i, fEjected, false)
}
