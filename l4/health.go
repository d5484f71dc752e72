package l4

import (
	"errors"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/health"
)

// Healthy is a Balancer whose servers have health state (active checks,
// outlier detection, circuit breakers, limits): a relay skips the servers it
// reports unavailable, asks Admit before each connect and reports every
// attempt's outcome with Done.
type Healthy interface {
	Balancer
	// Health returns the group's health state, index for index with Servers;
	// nil when it has none.
	Health() *health.Group
}

var _ Healthy = (*Group)(nil)

// errAllUnavailable is the reason a client is reset when every server of its
// group is down, ejected, drained or has its breaker open.
var errAllUnavailable = errors.New("l4: every upstream server is down, ejected, drained or open")

// relayHealth is a relay's bookkeeping with its group's health state. Owned by
// the relay's loop.
type relayHealth struct {
	g        *health.Group // nil when the group has none
	admitted bool          // Admit passed for the current server and Done is owed
	ticket   health.Ticket // the admission's ticket, for Done
	dialing  bool          // ConnDialing was counted and neither ConnOpened nor ConnClosed yet
	opened   bool          // the current server's connect completed
	refused  uint64        // servers refused for this relay (unavailable, limits, breaker)
}

// healthOf returns b's health group, or nil.
func healthOf(b Balancer) *health.Group {
	if h, ok := b.(Healthy); ok {
		return h.Health()
	}
	return nil
}

// skipUnavailable marks the servers the health group excludes now as excluded
// (lb.Request.Exclude: not picked, and not a retry, which round_robin would not
// move its cursor for), so that the balancer does not pick them. It reports
// false when the group
// excludes every server, after resetting the client.
func (p *pair) skipUnavailable(n int) bool {
	g := p.hl.g
	if g == nil {
		return true
	}
	all := ^uint64(0)
	if n < 64 {
		all = 1<<n - 1
	}
	p.hl.refused |= g.Unavailable() & all
	p.lbr.Exclude |= p.hl.refused
	if p.hl.refused&all != all {
		return true // servers left (tried ones too: the connect loop tells)
	}
	p.px.stats.upstreamFailed.Add(1)
	p.px.opt.Logger.Warn("tcp: no upstream server may take the connection (down, ejected, drained, open or at a limit); resetting the client", "client", p.client)
	p.state = stDone
	p.down.Abort(errAllUnavailable)
	return false
}

// admit asks the health group whether server i may take the relay; a refused
// server is marked excluded. On admission the connect is counted as pending.
func (p *pair) admit(i int) bool {
	g := p.hl.g
	if g == nil {
		return true
	}
	v, t := g.Admit(i, false)
	if v != health.Admitted {
		if i < 64 {
			p.hl.refused |= 1 << i
			p.lbr.Exclude |= 1 << i // in Tried too: the connect loop marks each pick
		}
		return false
	}
	p.hl.admitted, p.hl.ticket, p.hl.dialing, p.hl.opened = true, t, true, false
	g.ConnDialing(i)
	return true
}

// connectFailed reports that the connect to the current server failed (refused,
// timed out, unreachable): a failure for its breaker and outlier detection, and
// a count for the group's connect-failure counter of that server.
func (p *pair) connectFailed() {
	p.px.stats.dialFailures.Add(1)
	if f, ok := p.bal.(interface{ connectFailed(int) }); ok {
		f.connectFailed(p.srv)
	}
	p.healthDone(health.Failed)
}

// upOpened counts the relay and the current server's connect as completed.
func (p *pair) upOpened() {
	p.px.stats.relays.Add(1)
	if p.hl.g != nil && p.hl.dialing {
		p.hl.dialing, p.hl.opened = false, true
		p.hl.g.ConnOpened(p.srv)
	}
}

// healthDone ends the admitted attempt on the current server with o, once.
func (p *pair) healthDone(o health.Outcome) {
	g := p.hl.g
	if g == nil || !p.hl.admitted {
		return
	}
	p.hl.admitted = false
	g.ConnClosed(p.srv, p.hl.opened)
	p.hl.dialing, p.hl.opened = false, false
	g.Done(p.srv, 0, o, p.hl.ticket)
}

// ended reports the end of a relay to the health group and adds the bytes of
// each direction to the proxy's counters. A reset or error of the upstream
// connection is a failure of its server; one of the client connection says
// nothing about the server (cancelled, like a client that left during the
// connect); a relay that ended otherwise (both FINs, the idle timeout) is a
// success.
func (p *pair) ended(from *engine.Conn, err error) {
	p.px.stats.toUpstream.Add(uint64(p.dirs[0].moved))
	p.px.stats.toClient.Add(uint64(p.dirs[1].moved))
	if p.hl.g == nil || !p.hl.admitted {
		return
	}
	o := health.Succeeded
	switch {
	case p.state != stRelaying && p.up != nil && !p.hl.opened:
		o = health.Cancelled // the client left while the connect was in progress
	case err != nil && from == p.up && p.up != nil:
		o = health.Failed
	case err != nil && from == p.down:
		o = health.Cancelled
	}
	p.healthDone(o)
}
