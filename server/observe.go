package server

import (
	"net/netip"
	"time"
)

// Observed is what a ResponseObserver reads about a request whose response ended (or
// whose client went first): the request view plus the response's outcome, on either
// protocol. *Ctx and HTTP/2 stream exchanges implement it. Its methods run on the
// request's loop, inside ResponseDone.
type Observed interface {
	RequestView
	// Began returns when Observe was called.
	Began() time.Time
	// Status returns the status written, or the one that would be written implicitly.
	Status() int
	// BodyBytes returns how many response body bytes were sent (HTTP/1.1; see
	// Ctx.BodyBytes) or queued to the stream (HTTP/2).
	BodyBytes() int64
	// HeadSent reports whether the response head was written.
	HeadSent() bool
	// Ended reports whether the response was completed.
	Ended() bool
	// LoopID returns the index of the loop serving the request (per-loop counters).
	LoopID() int
	// Upstream returns the origin server that answered (SetUpstream) and how long it
	// took; addr is not valid when the request was not proxied.
	Upstream() (addr netip.AddrPort, d time.Duration)
	// TLSVersion returns the TLS version of the connection, 0 on a plain one.
	TLSVersion() uint16
}

// Observable is an Exchange that accepts a ResponseObserver: *Ctx and HTTP/2 stream
// exchanges do, so a router observes both protocols the same way.
type Observable interface {
	Exchange
	// Observe attaches o and records the current time as the request's start.
	Observe(o ResponseObserver)
}

var (
	_ Observed   = (*Ctx)(nil)
	_ Observed   = (*h2x)(nil)
	_ Observable = (*Ctx)(nil)
	_ Observable = (*h2x)(nil)
)

// LoopID returns the index of the connection's loop.
func (c *Ctx) LoopID() int { return c.ec.Loop().ID() }

// Observe attaches o to the stream's request; it is told once, when the response ends
// or the stream goes first.
func (x *h2x) Observe(o ResponseObserver) {
	x.obs = o
	x.began = time.Now()
}

// Began returns when Observe was called, or the zero time.
func (x *h2x) Began() time.Time { return x.began }

// Status returns the response status.
func (x *h2x) Status() int { return x.status }

// BodyBytes returns the response body bytes passed to the stream: a response
// completes only once all of it has (flow control allowing), and a stream reset
// before that counts none of what was still queued. Bytes in the connection's
// output when it closed (at most the peer's window) count as sent.
func (x *h2x) BodyBytes() int64 { return x.written }

// LoopID returns the index of the connection's loop.
func (x *h2x) LoopID() int { return x.hc.ec.Loop().ID() }

// observed tells the observer, if any, that the exchange is over.
func (x *h2x) observed() {
	if o := x.obs; o != nil {
		x.obs = nil
		o.ResponseDone(x)
	}
}

// SetUpstream records which upstream server answered and how long it took, as
// Ctx.SetUpstream does.
func (x *h2x) SetUpstream(addr netip.AddrPort, d time.Duration) {
	x.upstream, x.upstreamTime = addr, d
}

// Upstream returns what SetUpstream recorded.
func (x *h2x) Upstream() (netip.AddrPort, time.Duration) { return x.upstream, x.upstreamTime }

// TLSVersion returns the TLS version of the stream's connection, or 0 on h2c.
func (x *h2x) TLSVersion() uint16 {
	if v, ok := x.hc.lay.(tlsVersioner); ok {
		return v.TLSVersion()
	}
	return 0
}
