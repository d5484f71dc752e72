package app

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/tlsterm"
)

// tlsConfig builds the crypto/tls configuration of a server's TLS section: the
// certificates (chosen by SNI, the ACME one first for its domains), the
// unknown-SNI policy, versions and TLS 1.2 suites, and the client certificate
// checks (verify_client with client_ca; nil when off). A file that does not
// load is an error and nothing changes. Call with a.mu held (or from New).
func (a *App) tlsConfig(t *config.TLS) (*tls.Config, *tlsterm.ClientAuth, error) {
	var files []tlsterm.CertFiles
	for _, c := range t.Certificates {
		files = append(files, tlsterm.CertFiles{Cert: c.Cert, Key: c.Key, OCSP: c.OCSPStaple})
	}
	sel := &tlsterm.Selector{RejectUnknown: t.UnknownSNI == "reject"}
	if len(files) > 0 {
		certs, err := tlsterm.LoadCerts(files)
		if err != nil {
			return nil, nil, err
		}
		sel.Static = certs
	}
	if t.ACME != nil {
		m, err := a.acmeManager(t.ACME)
		if err != nil {
			return nil, nil, err
		}
		sel.Sources = []tlsterm.CertSource{m}
	}
	c := sel.Config()
	c.MinVersion = t.TLSVersion()
	c.CipherSuites = t.CipherSuiteIDs()
	c.CurvePreferences = t.CurveIDs()
	mode := map[string]tlsterm.ClientVerify{
		config.VerifyOn: tlsterm.VerifyOn, config.VerifyOptional: tlsterm.VerifyOptional,
		config.VerifyOptionalNoCA: tlsterm.VerifyOptionalNoCA,
	}[t.ClientVerify()]
	if mode == tlsterm.VerifyOff {
		return c, nil, nil
	}
	auth := &tlsterm.ClientAuth{Mode: mode}
	if t.ClientCA != "" {
		pool, err := config.ClientCAPool(t.ClientCA)
		if err != nil {
			return nil, nil, err
		}
		b, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return nil, nil, err
		}
		sum := sha256.Sum256(b) // the same in every process: tickets resume across them
		auth.CAs, auth.ID = pool, hex.EncodeToString(sum[:8])
	}
	return c, auth, nil
}

// routerOf returns the Router under a listener's handler, through the HSTS
// wrapper of tlsHandler; ok is false when there is none.
func routerOf(h server.Handler) (r *Router, ok bool) {
	for {
		switch w := h.(type) {
		case *Router:
			return w, true
		case hsts:
			h = w.h
		case hstsExchange:
			h = w.h
		default:
			return nil, false
		}
	}
}

// tlsHandler is the handler of a TLS listener serving h: HSTS added to every
// response. (The Router answers refused client certificates, refuseCert.)
func tlsHandler(h server.Handler, t *config.TLS) server.Handler {
	return withHSTS(h, t.HSTS)
}

// tlsOf maps each listen address of a server with a TLS section to it.
func tlsOf(cfg *config.Config) map[string]*config.TLS {
	out := map[string]*config.TLS{}
	for i := range cfg.Servers {
		if t := cfg.Servers[i].TLS; t != nil {
			for _, addr := range cfg.Servers[i].Listen {
				out[addr] = t
			}
		}
	}
	return out
}

// redirectsOf maps each redirect_http address to its redirecting handler, which
// answers ACME HTTP-01 validations with acme when it is not nil.
func redirectsOf(cfg *config.Config, acme httpToken) map[string]server.Handler {
	out := map[string]server.Handler{}
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		if s.TLS == nil || len(s.Listen) == 0 {
			continue
		}
		port := ""
		if _, p, err := net.SplitHostPort(s.Listen[0]); err == nil && p != "443" {
			port = ":" + p
		}
		for _, addr := range s.TLS.RedirectHTTP {
			out[addr] = redirectHTTPS{port: port, acme: acme}
		}
	}
	return out
}

// redirectHTTPS answers every request with a 308 to the same host and target
// over https (on port, when not empty), except ACME HTTP-01 validations.
type redirectHTTPS struct {
	port string
	acme httpToken // nil: no server uses ACME
}

func (r redirectHTTPS) ServeGale(c *server.Ctx) {
	if r.acme.serve(c) {
		return
	}
	host := string(c.Host())
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" {
		c.Error(400, "no Host to redirect to")
		return
	}
	if net.ParseIP(host) != nil && len(host) > 0 && host[0] != '[' && containsColon(host) {
		host = "[" + host + "]"
	}
	target, ok := redirectTarget(c.Request())
	if !ok {
		c.Error(400, "a "+c.Request().Form.String()+" request target cannot be redirected to https")
		return
	}
	c.Header().Set("Location", "https://"+host+r.port+target)
	c.Respond(308, "text/plain; charset=utf-8", []byte("redirecting to https\n"))
}

// redirectTarget returns the path and query a redirect to https keeps of the
// request's target: the target itself in origin-form, the path and query of an
// absolute-form one ("http://host/p?q", whose host is already the request's
// Host), as nginx's $request_uri does. Asterisk-form ("OPTIONS *") and
// authority-form (CONNECT) targets have no path to redirect to, and nginx
// answers them 400: ok is false.
func redirectTarget(req *http1.Request) (target string, ok bool) {
	switch req.Form {
	case http1.FormOrigin:
		return string(req.Target), true
	case http1.FormAbsolute:
		if req.Query != nil {
			return string(req.Path) + "?" + string(req.Query), true
		}
		return string(req.Path), true
	}
	return "", false
}

func containsColon(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return true
		}
	}
	return false
}

// withHSTS adds Strict-Transport-Security to every response of h when maxAge is
// positive. The result serves HTTP/2 exchanges too when h does.
func withHSTS(h server.Handler, maxAge time.Duration) server.Handler {
	if maxAge <= 0 {
		return h
	}
	s := hsts{h: h, v: "max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)}
	if x, ok := h.(server.ExchangeHandler); ok {
		return hstsExchange{s, x}
	}
	return s
}

// hsts is withHSTS's wrapper of an HTTP/1-only handler.
type hsts struct {
	h server.Handler
	v string // the header's value
}

func (s hsts) ServeGale(c *server.Ctx) {
	c.Header().Set("Strict-Transport-Security", s.v)
	s.h.ServeGale(c)
}

// hstsExchange is withHSTS's wrapper of a handler that serves every protocol.
type hstsExchange struct {
	hsts
	x server.ExchangeHandler
}

var _ server.ExchangeHandler = hstsExchange{}

func (s hstsExchange) ServeExchange(x server.Exchange) {
	x.Header().Set("Strict-Transport-Security", s.v)
	s.x.ServeExchange(x)
}

// listenTLS serves addr with TLS terminated by a new Terminator; with h2 among
// the server's protocols, ALPN offers h2 and HTTP/2 serves those connections.
// Inherited sockets of addr in o are served instead of new ones, and the session
// ticket keys come from t's key file or o's TicketSecret (see rotateTickets).
func (a *App) listenTLS(addr string, t *config.TLS, h server.Handler, o *Options) (*server.Listener, error) {
	c, auth, err := a.tlsConfig(t)
	if err != nil {
		return nil, err
	}
	// Every TLS listener answers TLS-ALPN-01 for the ACME domains of any server
	// (a reload may add an acme section to a running listener).
	opts := tlsterm.Options{Config: c, ClientAuth: auth, HandshakeTimeout: t.HandshakeTimeout, Pool: a.pool, Challenge: a.acmeChallenge}
	if r, ok := h.(*Router); ok && r.h2 {
		opts.H2 = a.srv.NewHTTP2(server.HTTP2Options{})
	}
	secret := o.TicketSecret
	if t.TicketKeyFile != "" {
		if secret, err = config.ReadTicketKey(t.TicketKeyFile); err != nil {
			return nil, err
		}
	}
	var l *server.Listener
	var term *tlsterm.Terminator
	if in, ok := o.Listeners[addr]; ok && len(in.FDs) > 0 {
		l, term, err = tlsterm.ListenFDs(a.srv, in.FDs, tlsHandler(h, t), nil, server.Dispatch{}, opts)
		if l != nil {
			l.Addr = in.Addr
		}
	} else {
		l, term, err = tlsterm.Listen(a.srv, addr, tlsHandler(h, t), nil, server.Dispatch{}, opts)
	}
	if err != nil {
		return nil, err
	}
	if secret != nil {
		if err := a.rotateTickets(term, secret, addr, t.TicketRotation); err != nil {
			return nil, err
		}
	}
	a.terms[addr] = term
	return l, nil
}
