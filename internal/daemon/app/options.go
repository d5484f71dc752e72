package app

import (
	"strings"
	"time"

	"github.com/gale-server/gale/internal/os/numa"
	"github.com/gale-server/gale/metrics"
	"github.com/gale-server/gale/server"
)

// Options adjust how NewWithOptions builds a server. The zero value builds
// what New builds.
type Options struct {
	// Listeners holds listening sockets opened before the App, by configured
	// listen address: by the supervising parent of a worker process, or by the
	// process a binary upgrade replaces. An address found here is served on
	// these sockets (spread over the loops) instead of new ones; the App owns
	// the descriptors from then on. Addresses not found here are bound as
	// usual.
	Listeners map[string]Inherited
	// Placement, when not nil, replaces the CPU pinning New derives from
	// cpu_affinity: loop i runs on Placement.CPUs[i] and its read buffer is
	// bound to NUMA node Placement.Nodes[i] (see internal/numa).
	Placement *numa.Placement
	// StatsPath and StatsSlot name the instance's stats segment and this
	// process's slot in it: the process publishes its metrics next to the
	// segment, and /metrics adds up every process's. StatsPath "" (the
	// default) means the process reports only its own numbers.
	StatsPath string
	StatsSlot int
	// Workers lists the instance's worker processes for /status.json; nil
	// lists none.
	Workers func() []metrics.Worker
	// Started is when the instance started (its stats segment was created),
	// which /status.json reports as started: the same whichever worker process
	// answers, a restarted one included. Zero means when the App was made.
	Started time.Time
	// RefusedReloads, when not nil, lists reloads refused before they reached
	// this process (by a supervising parent), which /status.json shows with the
	// reloads the App applied.
	RefusedReloads func() []metrics.Reload
	// TicketSecret, when not nil, is the secret (at least tlsterm.MinTicketSecret
	// bytes) the session ticket keys of TLS listeners without a ticket_key_file
	// are derived from: the supervising parent generates one for all its workers.
	TicketSecret []byte
}

// Inherited is one configured address's listening sockets.
type Inherited struct {
	Addr string // the address the sockets are bound to ("127.0.0.1:8080")
	FDs  []int  // listening, SO_REUSEPORT sockets
}

// place applies the placement to the server options.
func (o *Options) place(so *server.Options) {
	if o.Placement != nil {
		so.CPUs = o.Placement.CPUs
		so.Nodes = o.Placement.Nodes
	}
}

// listen serves addr with r on inherited sockets if there are any, and on new ones
// otherwise; with h2c among the server's protocols, HTTP/2 connections (told by their
// preface) are served on the same sockets, and with h2c alone every connection is
// HTTP/2.
func (o *Options) listen(srv *server.Server, addr string, r *Router) (*server.Listener, error) {
	in, ok := o.Listeners[addr]
	inherited := ok && len(in.FDs) > 0
	var l *server.Listener
	var err error
	switch {
	case !r.http1 && inherited:
		l, err = srv.ListenFDsHTTP2(in.FDs, r, server.HTTP2Options{})
	case !r.http1:
		return srv.ListenHTTP2(addr, r, server.HTTP2Options{})
	case r.h2c && inherited:
		l, err = srv.ListenFDsDispatch(in.FDs, h2cDispatch(srv, r))
	case r.h2c:
		return srv.ListenDispatch(addr, h2cDispatch(srv, r))
	default:
		return o.listenHTTP1(srv, addr, r)
	}
	if err != nil {
		return nil, err
	}
	l.Addr = in.Addr
	return l, nil
}

// listenHTTP1 listens on addr (or adopts its inherited sockets) for HTTP/1 only,
// served by h: a router without h2c, or an HTTP to HTTPS redirect.
func (o *Options) listenHTTP1(srv *server.Server, addr string, h server.Handler) (*server.Listener, error) {
	in, ok := o.Listeners[addr]
	if !ok || len(in.FDs) == 0 {
		return srv.ListenHandler(BindAddr(addr), h)
	}
	l, err := srv.ListenFDsHandler(in.FDs, h)
	if err != nil {
		return nil, err
	}
	l.Addr = in.Addr
	return l, nil
}

// h2cDispatch serves HTTP/1 and HTTP/2 (prior knowledge, and Upgrade: h2c unless the
// server's h2c_upgrade is false) with the router.
func h2cDispatch(srv *server.Server, r *Router) server.Dispatch {
	return server.Dispatch{HTTP1: r, H2: srv.NewHTTP2(server.HTTP2Options{}), H2CUpgrade: r.h2cUpgrade}
}

// Prefixes mark the keys of listeners other than servers' among the inherited
// sockets, so that none shares a key with a server address spelled the same
// (127.0.0.1:0 for several of them): the admin listener's, a tcp entry's and a
// server's redirect_http addresses.
const (
	adminPrefix    = "admin/"
	tcpPrefix      = "tcp/"
	redirectPrefix = "redirect/"
)

// AdminSocketKey returns the key of the admin listener's sockets in
// Options.Listeners.
func AdminSocketKey(addr string) string { return adminPrefix + addr }

// TCPSocketKey returns the key of a tcp entry's listen address in
// Options.Listeners.
func TCPSocketKey(addr string) string { return tcpPrefix + addr }

// RedirectSocketKey returns the key of a redirect_http address in
// Options.Listeners.
func RedirectSocketKey(addr string) string { return redirectPrefix + addr }

// BindAddr returns the address a socket key binds to.
func BindAddr(key string) string {
	for _, p := range []string{adminPrefix, tcpPrefix, redirectPrefix} {
		if a, ok := strings.CutPrefix(key, p); ok {
			return a
		}
	}
	return key
}
