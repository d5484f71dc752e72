package proxy

import (
	"net/netip"

	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/lb"
)

// Choosing a server. The upstream's lb.Balancer picks the server of every
// attempt (package lb has the algorithms). The exchange fills one lb.Request
// per request — its loop, its hashed key when the balancer reads one, the
// servers already tried — and Upstream.opts.Skip (health's predicate) is its
// Skip. A balancer that tracks load (lb.Tracker) hears of the start and end
// of every attempt. Nothing here allocates per request: the lb.Request lives
// in the exchange.

// newBalancer builds the upstream's balancer from its options.
func newBalancer(o *UpstreamOptions, loops int) (lb.Balancer, error) {
	servers := make([]lb.Server, len(o.Servers))
	for i, s := range o.Servers {
		servers[i] = lb.Server{ID: s.Addr.String(), Weight: s.Weight, Backup: s.Backup}
	}
	method := o.Balance
	if method == "" {
		method = lb.WeightedRoundRobin
	}
	lo := o.BalanceOptions
	lo.Loops = loops
	return lb.New(method, servers, lo)
}

var question = []byte("?")

// requestKey returns the hashed balancing key of req from the client at remote,
// and false when the request has no value for it (no such header, cookie or
// query parameter, or an empty one).
func requestKey(k lb.KeySpec, req *http1.Request, remote netip.AddrPort) (uint64, bool) {
	switch k.Kind {
	case lb.KeyIP:
		return lb.HashAddr(remote.Addr().Unmap()), true
	case lb.KeyURI:
		if req.Form == http1.FormAbsolute {
			// The origin-form the request is forwarded in, as an HTTP/2
			// :path and an origin-form request of the same resource hash
			// (nginx's $request_uri is the same for both forms too).
			if req.Query == nil {
				return lb.HashBytes(req.Path), true
			}
			return lb.HashParts(req.Path, question, req.Query), true
		}
		return lb.HashBytes(req.Target), true
	case lb.KeyHeader:
		v, _ := req.Header(k.Name)
		return lb.HashBytes(v), len(v) > 0
	case lb.KeyCookie:
		for i := range req.Headers {
			if http1.EqualFold(req.Headers[i].Name, "cookie") {
				if v, ok := lb.CookieValue(req.Headers[i].Value, k.Name); ok {
					return lb.HashBytes(v), len(v) > 0
				}
			}
		}
		return 0, false
	}
	v, _ := lb.QueryValue(req.Query, k.Name)
	return lb.HashBytes(v), len(v) > 0
}

// keylessKey returns the key of a request without a value for the upstream's
// hash_key: a different one for each request of the loop, so that such
// requests spread over the servers by their shares (at random, Caddy's
// fallback; HAProxy and nginx's hash take turns) instead of all hashing the
// empty value to one server, which took every new visitor of a cookie:NAME
// key (no cookie yet) or every client without the header.
func (ls *loopState) keylessKey() uint64 {
	ls.keyless++
	return lb.Mix(ls.keyless)
}

// pick chooses the server of the next attempt: one not yet tried for this
// request when there is one, else any eligible one (a retry on the only server
// is still a fresh connection); -1 when none may take it.
func (x *exchange) pick() int {
	b := x.ls.u.balancer
	x.lbr.Tried = x.tried
	x.lbr.Now = x.c.Loop().Now().UnixNano()
	if i := b.Pick(&x.lbr); i >= 0 || x.tried == 0 {
		return i
	}
	x.lbr.Tried = 0
	return b.Pick(&x.lbr)
}

// trackStart reports the attempt's start to a balancer that tracks load.
func (x *exchange) trackStart() {
	if t := x.ls.u.tracker; t != nil {
		t.Start(x.srv)
		x.tracked, x.trackedAt = true, x.c.Loop().Now()
	}
}

// trackDone reports the end of the attempt started by trackStart, once.
func (x *exchange) trackDone(failed bool) {
	if !x.tracked {
		return
	}
	x.tracked = false
	x.ls.u.tracker.Done(x.srv, x.c.Loop().Now().Sub(x.trackedAt), failed)
}
