package app

import (
	"net/netip"
	"strings"

	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/metrics"
	"github.com/gale-server/gale/server"
)

// Router is the handler of one virtual server: it tries its routes in order and
// hands the request to the first that matches, or answers 404. It is immutable once
// built, so every loop can share it; a reload builds a new one.
type Router struct {
	routes []route
	h2c    bool // the server's protocols include h2c (read when its listener opens)
	h2     bool // the server's protocols include h2 (over TLS; read when its listener opens)
	http1  bool // the server's protocols include http1
	// h2cUpgrade: the server's h2c_upgrade (read when its listener opens).
	h2cUpgrade bool
	none       *metrics.Observer // observes requests no route matches; nil when unobserved
	acme       httpToken         // answers ACME HTTP-01 validations (plain listeners); nil when none
}

var (
	_ server.Handler          = (*Router)(nil)
	_ server.ExchangeHandler  = (*Router)(nil)
	_ server.H2CUpgradeFilter = (*Router)(nil)
)

// route is one compiled match plus its action. Paths and hosts are kept in the form
// the request's are compared in: paths normalized by http1.NormalizePath, hosts by
// normHost.
type route struct {
	prefix     string     // normalized path prefix ("" matches every path)
	exact      string     // normalized exact path, "" when unused
	host       string     // normalized host, or the suffix (".example.com") when wildcard
	hostIP     netip.Addr // the host when it is an IP address literal
	wildcard   bool       // host was "*.suffix"
	methods    []string   // upper-case methods; empty matches any
	handler    server.Handler
	exchange   server.ExchangeHandler // the same action for every protocol; nil if HTTP/1.1 only
	actionName string
	obs        *metrics.Observer // attached to each request; nil when unobserved
}

// ServeGale dispatches the request. Routes see the request's NormPath, the path the
// file server (and later the proxy) acts on, and its host without port, brackets or
// trailing dot; the host of an absolute-form target wins over the Host field (RFC
// 9112 §3.2.2), which the parser already applied to Request.Host.
func (r *Router) ServeGale(c *server.Ctx) {
	if r.acme.serve(c) {
		return
	}
	if refuse := refuseCert(c.ClientCert()); refuse != "" {
		r.observeNone(c)
		c.Error(400, refuse)
		return
	}
	req := c.Request()
	if reason, tunnel := refusedMethod(req.Method); reason != "" {
		r.observeNone(c)
		if tunnel {
			// Whatever follows the head may be tunnel bytes, not a request: close after.
			c.SetKeepAlive(false)
		}
		c.Error(405, reason)
		return
	}
	rt, status := r.route(req.Method, req.NormPath, req.Path, req.Host)
	switch {
	case rt != nil:
		if rt.obs != nil {
			c.Observe(rt.obs)
		}
		rt.handler.ServeGale(c)
	case status == 404 && serverWide(req.Method, req.Path):
		r.observeNone(c)
		c.Respond(200, "", nil)
	case status == 404:
		r.observeNone(c)
		c.Error(404, "no route matches")
	default:
		r.observeNone(c)
		c.Error(status, "")
	}
}

// ServeExchange dispatches a request of any protocol (an HTTP/2 stream) with the same
// matching as ServeGale. A route whose action serves HTTP/1.1 only answers 505.
func (r *Router) ServeExchange(x server.Exchange) {
	refuse, status := refuseCert(server.ExchangeClientCert(x)), 400
	if refuse == "" {
		refuse, _ = refusedMethod(x.Method())
		status = 405
	}
	if refuse != "" {
		if ob, ok := x.(server.Observable); ok && r.none != nil {
			ob.Observe(r.none)
		}
		x.Error(status, refuse)
		return
	}
	rt, status := r.route(x.Method(), x.NormPath(), x.Path(), x.Host())
	if ob, ok := x.(server.Observable); ok {
		switch {
		case rt != nil && rt.obs != nil:
			ob.Observe(rt.obs)
		case rt == nil && r.none != nil:
			ob.Observe(r.none)
		}
	}
	switch {
	case rt != nil && rt.exchange != nil:
		rt.exchange.ServeExchange(x)
	case rt != nil:
		x.Error(505, "this route serves HTTP/1.1 only")
	case status == 404 && serverWide(x.Method(), x.Path()):
		x.Respond(200, "", nil)
	case status == 404:
		x.Error(404, "no route matches")
	default:
		x.Error(status, "")
	}
}

// refusedMethod returns the reason of the 405 that answers method before any route
// sees it, or "" for a method routes may serve; tunnel is true for CONNECT, after
// which an HTTP/1.1 connection closes.
//
// CONNECT (RFC 9110 §9.3.6): no action gale routes to opens a tunnel, and a 2xx
// answer to CONNECT tells the client that one is open (with no Content-Length or
// body allowed), so the router refuses CONNECT, as nginx does, whichever route its
// authority would match: a respond route would send its body into what the client
// takes for a tunnel, and the proxy would forward the CONNECT and relay an
// upstream's 200 as a response.
//
// TRACE (RFC 9110 §9.3.8) echoes the request back, credentials and cookies
// included, which is what cross-site tracing reads; nginx refuses it with 405 before
// any location runs, and so does gale: a respond route would answer it 200 and a
// proxy route forward it to an origin that may echo it.
func refusedMethod(method []byte) (reason string, tunnel bool) {
	switch string(method) {
	case "CONNECT":
		return "CONNECT is not served here", true
	case "TRACE":
		return "TRACE is not served here", false
	}
	return "", false
}

// serverWide reports whether the request is "OPTIONS *", a question about the server
// as a whole (RFC 9110 §9.3.7). No route's path matches "*", so unless a route without
// a path match takes it, the router answers it with an empty 200, as net/http does,
// instead of a 404 that reads as a missing resource.
func serverWide(method, path []byte) bool {
	return string(method) == "OPTIONS" && string(path) == "*"
}

// route returns the first route matching the request, or nil and the status to answer:
// 404, or the error of a path that cannot be normalized.
func (r *Router) route(method, norm, path, host []byte) (*route, int) {
	if norm == nil && len(path) > 0 {
		n, err := http1.NormalizePath(nil, path)
		if err != nil {
			return nil, err.Status
		}
		norm = n
	}
	name := http1.HostName(host)
	for i := range r.routes {
		if rt := &r.routes[i]; rt.matches(method, norm, name) {
			return rt, 0
		}
	}
	return nil, 404
}

// refuseCert returns why a request must be answered 400 instead of routed:
// its connection's client certificate is refused by verify_client (nginx's
// texts, "No required SSL certificate was sent" or "The SSL certificate
// error"; the TLS layer decided once, after the handshake, tlsterm.ClientAuth).
// Empty when the request is served, and on a plain connection (cc nil).
func refuseCert(cc *server.ClientCert) string {
	if cc == nil {
		return ""
	}
	return cc.Refuse
}

// observeNone attaches the observer of unrouted requests, if any.
func (r *Router) observeNone(c *server.Ctx) {
	if r.none != nil {
		c.Observe(r.none)
	}
}

func (rt *route) matches(method, path, host []byte) bool {
	if rt.exact != "" && string(path) != rt.exact {
		return false
	}
	if rt.prefix != "" && !strings.HasPrefix(string(path), rt.prefix) {
		return false
	}
	if len(rt.methods) > 0 {
		ok := false
		for _, m := range rt.methods {
			if string(method) == m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	switch {
	case rt.host == "":
	case rt.hostIP.IsValid():
		ip, err := netip.ParseAddr(string(host))
		if err != nil || ip.WithZone("") != rt.hostIP {
			return false
		}
	case rt.wildcard:
		if len(host) <= len(rt.host) || !asciiHasSuffixFold(host, rt.host) {
			return false
		}
	case !http1.EqualFold(host, rt.host):
		return false
	}
	return true
}

// normHost puts a configured host in the form http1.HostName gives request hosts,
// lower-cased: "Admin.Example.COM." becomes "admin.example.com", "[::1]" becomes "::1".
func normHost(h string) string {
	return strings.ToLower(string(http1.HostName([]byte(h))))
}

func asciiHasSuffixFold(b []byte, suffix string) bool {
	return len(b) >= len(suffix) && http1.EqualFold(b[len(b)-len(suffix):], suffix)
}

// AllowH2CUpgrade lets an "Upgrade: h2c" request switch to HTTP/2 only when its route
// serves HTTP/2 and is neither a reverse proxy (which must not act on, nor forward, a
// hop-by-hop upgrade: it serves the request as HTTP/1.1 and drops the field) nor a
// WebSocket route. Unrouted requests may upgrade; HTTP/2 answers their 404.
func (r *Router) AllowH2CUpgrade(req *http1.Request) bool {
	rt, _ := r.route(req.Method, req.NormPath, req.Path, req.Host)
	if rt == nil {
		return true
	}
	return rt.exchange != nil && rt.actionName != "proxy" && rt.actionName != "websocket"
}
