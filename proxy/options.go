// Package proxy is gale's HTTP/1.1 reverse proxy: a route action (a server.Handler)
// that forwards each request to an upstream server over connections the event loop
// opens itself (engine.Loop.Dial), keeps them in per-loop keep-alive pools, streams
// bodies both ways with backpressure crossing the pair, retries only where it is safe
// and tunnels WebSocket upgrades byte for byte. A client connection and the upstream
// connection serving it live on the same loop, so relaying is a queue handoff; there
// is no goroutine and no lock per request or per upstream connection.
//
// See docs/proxy.md for what is forwarded, rewritten and refused.
package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/lb"
	"github.com/gale-server/gale/tlsterm"
)

// Server is one origin server of an upstream.
type Server struct {
	// Addr is the server's address.
	Addr netip.AddrPort
	// Weight is its share of requests relative to the others (at least 1).
	Weight int
	// Backup servers take requests only when no other server is eligible.
	Backup bool
}

// Keepalive bounds the idle connections kept to each server on each loop.
type Keepalive struct {
	Idle        int           // most idle connections per server and loop; 0 keeps none
	IdleTimeout time.Duration // an idle connection unused this long is closed
	MaxRequests int           // a connection is closed after this many requests
}

// Timeouts bound the stages of an upstream exchange.
type Timeouts struct {
	Connect        time.Duration // establishing a connection
	ResponseHeader time.Duration // from the request's end to the whole response head
	Read           time.Duration // between two reads of the response body
	Write          time.Duration // for the server to accept queued request bytes
}

// Retries says when a failed attempt is tried again.
type Retries struct {
	Tries            int     // most attempts per request, the first included
	ConnectFailure   bool    // retry when the connection could not be established
	ResetBeforeReply bool    // retry when it failed before any response byte
	Budget           float64 // share (0-1) of recent requests that may be retries
}

// UpstreamOptions configure an Upstream.
type UpstreamOptions struct {
	Name      string // for log lines
	Servers   []Server
	Keepalive Keepalive
	Timeouts  Timeouts
	Retries   Retries
	// Balance names the lb method that picks a server per attempt ("" is
	// weighted_round_robin), built with BalanceOptions (whose Loops is set by
	// NewUpstream).
	Balance        string
	BalanceOptions lb.Options
	// HashKey is where the key of a keyed method (ip_hash, hash, maglev) comes
	// from; the zero value is the client's address. The key is computed only
	// for a method that reads it.
	HashKey lb.KeySpec
	// Balancer, when not nil, is used instead of Balance. Its indexes are
	// those of Servers.
	Balancer lb.Balancer
	// Skip, when not nil, reports servers that must not take requests now
	// (down, ejected, circuit open): the health checker's predicate, passed to
	// the balancer as lb.Request.Skip. It runs on the loops, so it must be safe
	// for concurrent use, must not block, and should be a few atomic loads. It
	// is read by every request and must be set before NewUpstream (a checker
	// built first, whose state changes behind the predicate).
	Skip func(server int) bool
	// Logger receives a line per failed exchange (default slog.Default()).
	Logger *slog.Logger
	// Health, when set, excludes servers that are down, ejected, drained or open
	// and applies the per-server limits (see proxy/health.go); nil is none.
	Health *health.Group
	// TLS, when set, makes every server an https one: connections are dialled
	// with tlsterm.Dialer (verification on unless the configuration turns it off;
	// without ServerName each server's IP address is verified), and Host is
	// ServerName when set. NextProtos is the ALPN offer: empty, or "http/1.1"
	// only (NewUpstream refuses any other). WebSocket upgrades are tunnelled
	// through the connection's TLS layer.
	TLS *tls.Config
	// HandshakePool runs the TLS handshakes (default: tlsterm's shared client pool).
	HandshakePool *tlsterm.Pool
}

// Upstream is a group of servers with its per-loop connection pools. It is shared by
// every route that forwards to it and by every loop of one engine; each loop touches
// only its own state, found by loop ID, so an Upstream must not serve two engines.
type Upstream struct {
	opts     UpstreamOptions
	balancer lb.Balancer  // immutable; shared by the loops (lb keeps per-loop state)
	tracker  lb.Tracker   // balancer as a Tracker when lb.Tracks reports it does, or nil
	keyed    bool         // the balancer reads lb.Request.Key
	loops    []*loopState // index = loop ID; each owned by its loop
	health   *healthState // nil without a health group
	hosts    []string     // Host value per server: its address, or the TLS server name
	// prev is the upstream this one replaced, whose idle connections it adopts
	// (source.go).
	prev   atomic.Pointer[Upstream]
	dialer *tlsterm.Dialer // https servers; nil for plain ones
}

// NewUpstream builds an upstream for an engine of loops event loops.
func NewUpstream(opts UpstreamOptions, loops int) (*Upstream, error) {
	if len(opts.Servers) == 0 {
		return nil, errors.New("proxy: an upstream needs at least one server")
	}
	if len(opts.Servers) > 64 {
		return nil, fmt.Errorf("proxy: upstream %q has %d servers; at most 64 are supported", opts.Name, len(opts.Servers))
	}
	for i, s := range opts.Servers {
		if !s.Addr.IsValid() {
			return nil, fmt.Errorf("proxy: upstream %q: server %d has no address", opts.Name, i)
		}
		if s.Weight < 1 {
			opts.Servers[i].Weight = 1
		}
	}
	if opts.Retries.Tries < 1 {
		opts.Retries.Tries = 1
	}
	if opts.Keepalive.MaxRequests < 1 {
		opts.Keepalive.MaxRequests = 1 << 30
	}
	if opts.Keepalive.IdleTimeout <= 0 {
		opts.Keepalive.IdleTimeout = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	u := &Upstream{opts: opts, balancer: opts.Balancer, loops: make([]*loopState, loops)}
	if opts.Balancer == nil {
		b, err := newBalancer(&opts, loops)
		if err != nil {
			return nil, fmt.Errorf("proxy: upstream %q: %w", opts.Name, err)
		}
		u.balancer = b
	}
	if lb.Tracks(u.balancer) {
		u.tracker = u.balancer.(lb.Tracker)
	}
	u.keyed = lb.UsesKey(u.balancer)
	if opts.Health != nil && opts.Health.Len() != len(opts.Servers) {
		return nil, fmt.Errorf("proxy: upstream %q: the health group has %d servers, the upstream %d", opts.Name, opts.Health.Len(), len(opts.Servers))
	}
	u.health = newHealthState(&opts, loops)
	if opts.TLS != nil {
		for _, p := range opts.TLS.NextProtos {
			if p != "http/1.1" {
				return nil, fmt.Errorf("proxy: upstream %q: ALPN protocol %q: the proxy speaks HTTP/1.1 to upstreams, only \"http/1.1\" may be offered", opts.Name, p)
			}
		}
		d, err := tlsterm.NewDialer(tlsterm.DialOptions{Loops: loops, Config: opts.TLS, HandshakeTimeout: opts.Timeouts.Connect, Pool: opts.HandshakePool})
		if err != nil {
			return nil, err
		}
		u.dialer = d
	}
	for i := range u.loops {
		u.loops[i] = newLoopState(u)
	}
	for _, s := range opts.Servers {
		if opts.TLS != nil && opts.TLS.ServerName != "" {
			u.hosts = append(u.hosts, opts.TLS.ServerName)
		} else {
			u.hosts = append(u.hosts, s.Addr.String())
		}
	}
	return u, nil
}

// Name returns the upstream's name.
func (u *Upstream) Name() string { return u.opts.Name }

// Stats are an upstream's counters summed over loops.
type Stats struct {
	Requests uint64 // requests forwarded (attempts that got a connection)
	Dials    uint64 // connections opened
	Reused   uint64 // requests sent on a pooled connection
	Retries  uint64 // attempts after the first
	Failures uint64 // requests answered with 502, 503 or 504, or cut
	Idle     int64  // connections in the keep-alive pools now
}

// Stats returns the counters of every loop added up; safe from any goroutine.
func (u *Upstream) Stats() Stats {
	var s Stats
	for _, ls := range u.loops {
		s.Requests += ls.requests.Load()
		s.Dials += ls.dials.Load()
		s.Reused += ls.reused.Load()
		s.Retries += ls.retries.Load()
		s.Failures += ls.failures.Load()
		s.Idle += ls.idleConns.Load()
	}
	return s
}

// Route configures how one proxy route rewrites what it forwards.
type Route struct {
	// StripPrefix is removed from the start of the normalized path ("/api").
	StripPrefix string
	// SetHeaders replace same-named request fields (name, value pairs).
	SetHeaders [][2]string
	// PreserveHost forwards the client's Host instead of the server address.
	PreserveHost bool
	// TrustedProxies are the peers whose forwarding fields are appended to.
	TrustedProxies []netip.Prefix
	// Via, when not empty, is the pseudonym of the Via entry ("1.1 Via", RFC 9110
	// §7.6.3) added to every request sent upstream and every response relayed
	// back; entries the message already carries are kept before it. Empty adds
	// none (the default, as nginx, HAProxy and Caddy do).
	Via string
	// IgnoreClientHalfClose keeps an exchange going when the client half-closes
	// its connection (a FIN) while the origin answers, for clients that shut down
	// their sending side after the request and still read the response. By
	// default such an exchange is abandoned like one whose client closed or reset
	// its connection (nginx's proxy_ignore_client_abort off).
	IgnoreClientHalfClose bool
	// UnderscoresInHeaders forwards request fields whose names hold an underscore
	// ("X_Forwarded_For"). By default they are dropped, as nginx does
	// (underscores_in_headers off): origins behind CGI, WSGI or PHP read
	// X_Forwarded_For and X-Forwarded-For as the same variable, so a client could
	// set one the proxy replaces under a name it does not.
	UnderscoresInHeaders bool
	// TunnelIdleTimeout closes a WebSocket tunnel (either kind: the TCP relay of
	// plain ones, the copy through the loop of ones with a TLS side) that moved no
	// byte for this long. Zero means one hour.
	TunnelIdleTimeout time.Duration
}
