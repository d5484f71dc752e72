package proxy

import (
	"errors"
	"strconv"
	"time"

	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/lb"
)

// Errors of the health-aware pick.
var (
	errAllUnavailable = errors.New("proxy: every server is down, ejected, drained or has its breaker open")
	errOverLimit      = errors.New("proxy: every available server is at a limit (max_connections, max_pending, max_in_flight) or refused by its breaker")
)

// retryAfter is the Retry-After value, in seconds, of a 503 for an upstream
// without a server that may take the request.
const retryAfter = 1

// healthState is an upstream's link to its health group: one balancer per loop,
// rebuilt on that loop when the group's weights change (the admin API). Each
// entry is owned by its loop.
type healthState struct {
	g     *health.Group
	loops []healthLoop
}

type healthLoop struct {
	gen uint64
	bal lb.Balancer
	_   [40]byte
}

func newHealthState(o *UpstreamOptions, loops int) *healthState {
	if o.Health == nil {
		return nil
	}
	return &healthState{g: o.Health, loops: make([]healthLoop, loops)}
}

// loopBalancer returns the balancer loop uses: the upstream's until the group's
// weights change, then one the loop built over the new weights. (The group
// refuses weight changes for balancers that track load, whose state is shared.)
func (u *Upstream) loopBalancer(loop int) lb.Balancer {
	hs := u.health
	if hs == nil || u.tracker != nil || u.opts.Balancer != nil {
		return u.balancer
	}
	gen := hs.g.WeightGen()
	if gen == 0 {
		return u.balancer
	}
	hl := &hs.loops[loop]
	if hl.bal == nil || hl.gen != gen {
		o := u.opts
		o.Servers = append([]Server(nil), u.opts.Servers...)
		for i := range o.Servers {
			o.Servers[i].Weight = hs.g.Weight(i)
		}
		b, err := newBalancer(&o, len(hs.loops))
		if err != nil {
			return u.balancer
		}
		hl.bal, hl.gen = b, gen
	}
	return hl.bal
}

// healthAttempt is an exchange's bookkeeping with the health group. Owned by the
// exchange's loop.
type healthAttempt struct {
	admitted bool          // the current attempt was admitted and awaits Done
	ticket   health.Ticket // its admission's ticket, for Done
	refused  uint64        // servers refused for this request (limits, breaker)
	start    time.Time     // the loop's clock when the attempt was admitted
}

// pickHealthy chooses the server of the next attempt: the balancer's choice among
// the servers the health group does not exclude, not tried yet when another
// exists, and admitted by the server's limits and breaker. It returns -1 and the
// reason when none may take the request. A retry never goes to an excluded
// server: the excluded set is passed to the balancer as servers it may not pick
// (lb.Request.Exclude, apart from the servers tried, which make a pick a retry).
func (x *exchange) pickHealthy() (int, error) {
	u := x.ls.u
	hs := u.health
	if hs == nil {
		if srv := x.pick(); srv >= 0 {
			return srv, nil
		}
		return -1, errNoServer
	}
	b := u.loopBalancer(x.lbr.Loop)
	n := len(u.opts.Servers)
	all := ^uint64(0)
	if n < 64 {
		all = 1<<n - 1
	}
	skip := hs.g.Unavailable()
	if skip&all == all {
		return -1, errAllUnavailable
	}
	skip |= x.hx.refused
	for range n {
		if skip&all == all {
			return -1, errOverLimit
		}
		x.lbr.Tried, x.lbr.Exclude = x.tried, skip
		srv := b.Pick(&x.lbr)
		if srv < 0 && x.tried&^skip != 0 {
			// Every eligible server was tried: a retry goes to one of them again.
			x.lbr.Tried = 0
			srv = b.Pick(&x.lbr)
		}
		if srv < 0 {
			return -1, errNoServer
		}
		if v, t := hs.g.Admit(srv, len(x.ls.idle[srv]) > 0); v == health.Admitted {
			x.hx.admitted, x.hx.ticket, x.hx.start = true, t, x.c.Loop().Now()
			return srv, nil
		}
		x.hx.refused |= 1 << srv
		skip |= 1 << srv
	}
	return -1, errOverLimit
}

// readmit admits the keep-alive race's fresh attempt on the same server with the
// health group, as every attempt is, so that its outcome reaches the breaker and
// outlier detection and it counts against the limits; it reports false when the
// server may not take it now (down, ejected, drained or open, a limit, its
// half-open breaker's probes taken). Unadmitted, a refused
// connect after the race was a failure for nobody.
func (x *exchange) readmit() bool {
	hs := x.ls.u.health
	if hs == nil {
		return true
	}
	if hs.g.Unavailable()>>uint(x.srv)&1 != 0 {
		return false
	}
	v, t := hs.g.Admit(x.srv, false)
	if v != health.Admitted {
		x.hx.refused |= 1 << x.srv
		return false
	}
	x.hx.admitted, x.hx.ticket, x.hx.start = true, t, x.c.Loop().Now()
	return true
}

// endAttempt reports the current attempt's outcome to the health group, once.
func (x *exchange) endAttempt(status int, o health.Outcome) {
	if !x.hx.admitted {
		return
	}
	x.hx.admitted = false
	if status >= 500 && o == health.Succeeded {
		o = health.Failed
	}
	g := x.ls.u.health.g
	if o != health.Cancelled {
		g.ObserveLatency(x.srv, x.c.Loop().Now().Sub(x.hx.start))
	}
	g.Done(x.srv, status, o, x.hx.ticket)
}

// unavailable answers 503 with Retry-After: no server may take the request.
func (x *exchange) unavailable(cause error) {
	x.log(503, cause)
	x.finish()
	x.ls.failures.Add(1)
	if !x.c.Closed() {
		x.c.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		x.c.Respond(503, "text/plain; charset=utf-8", []byte("Service Unavailable: no upstream server may take the request\n"))
	}
}

// pooled counts a connection to srv going into (in) or out of the loop's pool
// in the health group, whose max_connections leaves idle pooled ones out.
func (ls *loopState) pooled(srv int, in bool) {
	if hs := ls.u.health; hs != nil {
		if in {
			hs.g.ConnPooled(srv)
		} else {
			hs.g.ConnUnpooled(srv)
		}
	}
}

// connDialing, connOpened and connClosed count an upstream connection's life in
// the health group's limits.
func (ls *loopState) connDialing(srv int) {
	if hs := ls.u.health; hs != nil {
		hs.g.ConnDialing(srv)
	}
}

func (uc *upConn) connOpened() {
	if hs := uc.ls.u.health; hs != nil {
		hs.g.ConnOpened(uc.srv)
	}
}

func (uc *upConn) connClosed() {
	if hs := uc.ls.u.health; hs != nil {
		hs.g.ConnClosed(uc.srv, uc.open)
	}
}

// Health returns the upstream's health group, or nil.
func (u *Upstream) Health() *health.Group {
	if u.health == nil {
		return nil
	}
	return u.health.g
}
