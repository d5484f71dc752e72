package l4

import (
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/l4proto"
)

// GateOptions configure a Gate.
type GateOptions struct {
	// Trusted lists the networks (load balancers) whose connections must start
	// with a PROXY protocol v1 or v2 header. Connections from elsewhere are never
	// parsed: they go to the next handler as they are.
	Trusted []netip.Prefix
	// Timeout bounds the wait for a trusted connection's header; default 10s.
	Timeout time.Duration
	// Logger receives a line for every refused connection; default slog.Default().
	Logger *slog.Logger
}

// GateStats are a Gate's cumulative counters.
type GateStats struct {
	Accepted uint64 // trusted connections whose header was read and handed on
	Passed   uint64 // connections from other sources, handed on unparsed
	BadProxy uint64 // trusted connections closed for a malformed, missing or late header
}

// Gate is an engine.Handler that stands in front of another (an HTTP listener's):
// for a connection from a trusted network it reads the PROXY protocol header,
// makes the client address it carries the connection's remote address
// (Conn.SetRemoteAddr: logs, Ctx.RemoteAddr and X-Forwarded-For then show the
// real client), and hands the connection, with the bytes after the header, to the
// next handler. A malformed header, or none within the timeout, closes the
// connection; it is counted and logged. The options are immutable; the counters
// are atomic, shared by all loops.
type Gate struct {
	next  engine.Handler
	opt   GateOptions
	stats struct{ accepted, passed, bad atomic.Uint64 }
}

var _ engine.Handler = (*Gate)(nil)

// NewGate returns a Gate in front of next.
func NewGate(next engine.Handler, opt GateOptions) *Gate {
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Gate{next: next, opt: opt}
}

// Stats returns the gate's counters.
func (g *Gate) Stats() GateStats {
	return GateStats{Accepted: g.stats.accepted.Load(), Passed: g.stats.passed.Load(), BadProxy: g.stats.bad.Load()}
}

// OnOpen hands an untrusted connection on at once and starts the header timer
// of a trusted one.
func (g *Gate) OnOpen(c *engine.Conn) {
	if !trustedBy(g.opt.Trusted, c.RemoteAddr().Addr()) {
		g.stats.passed.Add(1)
		c.SetHandler(g.next)
		g.next.OnOpen(c)
		return
	}
	c.SetTimeout(g.opt.Timeout)
}

// OnData reads the header; once it is whole the connection is re-parented and
// the next handler gets the bytes after it.
func (g *Gate) OnData(c *engine.Conn, in []byte) int {
	h, n, err := l4proto.ParseProxy(in)
	switch {
	case err != nil:
		g.refuse(c, "closing a connection with a bad PROXY header", err)
		return len(in)
	case n == 0:
		return 0 // the engine keeps the bytes and adds the next read to them
	}
	if !h.Unknown {
		c.SetRemoteAddr(h.Src)
	}
	g.stats.accepted.Add(1)
	c.CancelTimeout()
	c.SetHandler(g.next)
	g.next.OnOpen(c)
	if rest := in[n:]; len(rest) > 0 && !c.Closed() {
		return n + g.next.OnData(c, rest)
	}
	return n
}

// refuse closes a trusted connection without a valid header, counted and logged.
func (g *Gate) refuse(c *engine.Conn, msg string, err error) {
	g.stats.bad.Add(1)
	g.opt.Logger.Warn(msg, "peer", c.RemoteAddr(), "err", err)
	c.Close(err)
}

// OnEOF closes a connection that ended before its header was whole. One that
// sent nothing (a load balancer's connect-only health check) is not counted;
// one that ended inside its header is refused like a malformed one.
func (g *Gate) OnEOF(c *engine.Conn) {
	if c.Unread() > 0 {
		g.refuse(c, "closing a connection that ended inside its PROXY header", io.ErrUnexpectedEOF)
		return
	}
	c.Close(nil)
}

// OnDrain does nothing: nothing is written before the header.
func (g *Gate) OnDrain(*engine.Conn) {}

// OnTimeout closes a trusted connection whose header did not arrive in time.
func (g *Gate) OnTimeout(c *engine.Conn) {
	g.refuse(c, "closing a connection whose PROXY header did not arrive in time", engine.ErrTimeout)
}

// OnShutdown closes a connection still waiting for its header.
func (g *Gate) OnShutdown(c *engine.Conn) { c.Close(nil) }

// OnClose does nothing: the gate holds no state per connection.
func (g *Gate) OnClose(*engine.Conn, error) {}

// trustedBy reports whether a belongs to one of nets.
func trustedBy(nets []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}
