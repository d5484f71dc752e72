package tlsterm

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/server"
)

// DialOptions configure a Dialer.
type DialOptions struct {
	// Loops is the number of event loops of the engine whose loops dial
	// (required: len(Engine.Loops())).
	Loops int
	// Config is the client configuration: RootCAs (nil: the system's),
	// ServerName (SNI and the name verified; an IP address is verified against
	// the certificate's IP addresses and sends no SNI), Certificates (a client
	// certificate), InsecureSkipVerify, NextProtos. Required; ClientSessionCache
	// is set from SessionCache when nil.
	Config *tls.Config
	// HandshakeTimeout bounds a handshake from the connect (default 10s).
	HandshakeTimeout time.Duration
	// Pool runs the handshakes (default: a pool shared by every Dialer of the
	// process that has none).
	Pool *Pool
	// SessionCache is the number of sessions kept for resumption, for every
	// server name together (default 256; negative: no resumption).
	SessionCache int
}

// Dialer opens TLS connections from event loops (the proxy's https upstreams,
// health checks). A connection's handshake runs on the Pool like a server-side
// one; once it is complete the loop feeds records to crypto/tls and gives the
// plaintext to the connection's handler, with no goroutine, so an idle pooled
// connection costs what an idle server-side one does (docs/tls.md).
type Dialer struct {
	t      *Terminator // in client mode: per-loop connections, pool, counters
	cfg    *tls.Config
	h      dialHandler
	byAddr sync.Map // netip.AddrPort -> *tls.Config (ForAddr's copy) when cfg names no server
}

// clientState is what a Dialer's connection keeps on top of a tconn; owned by
// the connection's loop.
type clientState struct {
	cfg     *tls.Config
	pending []byte // plaintext written before the handshake completed
	drain   bool   // WantDrain was asked during the handshake
}

// dialHandler is the engine.Handler of a Dialer's connections: the
// Terminator's callbacks, except OnOpen, which starts a client handshake.
type dialHandler struct{ *Terminator }

var _ engine.Handler = dialHandler{}

// NewDialer returns a Dialer.
func NewDialer(o DialOptions) (*Dialer, error) {
	if o.Loops < 1 || o.Config == nil {
		return nil, errors.New("tlsterm: DialOptions.Loops and Config are required")
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.Pool == nil {
		o.Pool = clientPool()
	}
	cfg := o.Config.Clone()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.ClientSessionCache == nil && o.SessionCache >= 0 {
		n := o.SessionCache
		if n == 0 {
			n = 256
		}
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(n)
	}
	t := &Terminator{opts: Options{Config: cfg, HandshakeTimeout: o.HandshakeTimeout, MaxHandshakeBytes: 256 << 10, Pool: o.Pool}}
	t.initLoops(o.Loops)
	return &Dialer{t: t, cfg: cfg, h: dialHandler{t}}, nil
}

// Dial connects to addr from loop l (call it on l) and returns the engine
// connection and the Layer to write through. h gets OnOpen once the handshake
// is complete, then the decrypted bytes, as on a plain connection (with the
// same *engine.Conn: h may use its context, timer and close), and OnClose in
// every case: with an *engine.DialError when the connect or the handshake
// failed (its Err says which), so callers treat a bad certificate like a
// refused connect. Bytes written before the handshake completes are held and
// sent after it; Buffered counts them. The connection's timer belongs to the
// handshake until h's OnOpen.
func (d *Dialer) Dial(l *engine.Loop, addr netip.AddrPort, timeout time.Duration, h engine.Handler) (*engine.Conn, server.Layer, error) {
	ec, err := l.Dial(addr, timeout, d.h)
	if err != nil {
		return nil, nil, err
	}
	tl := d.t.loops[l.ID()]
	c := &tconn{t: d.t, tl: tl, ec: ec, upper: h, cl: &clientState{cfg: d.config(addr)}}
	tl.conns[ec] = c
	return ec, c, nil
}

// config returns the configuration for dialling addr (see ForAddr).
func (d *Dialer) config(addr netip.AddrPort) *tls.Config {
	if d.cfg.ServerName != "" {
		return d.cfg
	}
	if c, ok := d.byAddr.Load(addr); ok {
		return c.(*tls.Config)
	}
	c, _ := d.byAddr.LoadOrStore(addr, ForAddr(d.cfg, addr))
	return c.(*tls.Config)
}

// Stats returns the handshakes completed and the plaintext bytes received.
func (d *Dialer) Stats() Stats { return d.t.Stats() }

// OnOpen starts the client handshake once the connect completed.
func (h dialHandler) OnOpen(ec *engine.Conn) {
	t := h.Terminator
	c := t.loops[ec.Loop().ID()].conns[ec]
	c.raw = newRecordConn(ec, &t.opts.Pool.cpu)
	c.tc = tls.Client(c.raw, c.cl.cfg)
	ec.SetTimeout(t.opts.HandshakeTimeout)
	p := t.opts.Pool
	if !p.submit(c.handshake) {
		c.state = csDone
		ec.Close(handshakeError(ec, ErrHandshakeRefused))
		return
	}
	p.started.Add(1)
}

// OnClose releases the connection; before the connect completed it has no
// record state yet.
func (h dialHandler) OnClose(ec *engine.Conn, err error) {
	c := h.loops[ec.Loop().ID()].conns[ec]
	if c.raw == nil {
		c.raw = newRecordConn(nil, nil)
	}
	h.Terminator.OnClose(ec, err)
}

// OnTimeout ends a handshake that took too long as a failed connect, or passes
// the handler's timer to it.
func (h dialHandler) OnTimeout(ec *engine.Conn) {
	c := h.loops[ec.Loop().ID()].conns[ec]
	if c.state == csHandshake && c.raw != nil {
		h.opts.Pool.timedOut.Add(1)
		h.opts.Pool.failed.Add(1)
		c.state = csDone
		ec.Close(handshakeError(ec, ErrHandshakeTimeout))
		return
	}
	h.Terminator.OnTimeout(ec)
}

// clientOpen runs on the loop when a Dialer's handshake completed: the held
// plaintext is encrypted and queued, then the handler opens.
func (c *tconn) clientOpen() {
	cl := c.cl
	if len(cl.pending) > 0 {
		p := cl.pending
		cl.pending = nil
		if _, err := c.tc.Write(p); err != nil {
			c.ec.Close(err)
			return
		}
	}
	if cl.drain {
		cl.drain = false
		c.ec.WantDrain()
	}
	c.upper.OnOpen(c.ec)
	if !c.ec.Closed() {
		c.deliver(nil)
	}
}

// clientPool is the handshake pool of Dialers given none.
var clientPool = sync.OnceValue(func() *Pool { return NewPool(0, 0, 0) })

// handshakeError is the close reason of a Dialer's connection whose handshake
// failed: a DialError, so that it counts as a failed connect.
func handshakeError(ec *engine.Conn, err error) error {
	return &engine.DialError{Addr: ec.RemoteAddr(), Err: fmt.Errorf("tls handshake: %w", err)}
}

// ClientFiles name what a client configuration is made of; every field is
// optional.
type ClientFiles struct {
	// CA is a PEM bundle that verifies the servers (empty: the system's roots).
	CA string
	// Cert and Key are a client certificate (PEM, chain included) and its key.
	Cert, Key string
	// ServerName is the name sent with SNI and verified (empty: the dialled address).
	ServerName string
	// InsecureSkipVerify turns verification off (tests only).
	InsecureSkipVerify bool
	// ALPN lists the protocols offered with ALPN, in order of preference (none:
	// no ALPN extension). crypto/tls fails the handshake when the server
	// selects one not offered, and a server that supports none of them ends it
	// with a no_application_protocol alert.
	ALPN []string
}

// ClientConfig builds a client configuration from files (TLS 1.2 at least).
// With no ServerName the caller sets it per address (see ForAddr).
func ClientConfig(f ClientFiles) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName, InsecureSkipVerify: f.InsecureSkipVerify}
	if len(f.ALPN) > 0 {
		c.NextProtos = append([]string(nil), f.ALPN...)
	}
	if f.CA != "" {
		b, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: no PEM certificate found", f.CA)
		}
	}
	if f.Cert != "" || f.Key != "" {
		kp, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s: %w", f.Cert, err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}

// ForAddr returns c for dialling addr: c itself when it names a server, else a
// copy whose ServerName is addr's IP address (verified against the
// certificate's IP addresses; no SNI is sent). Copies share c's session cache.
func ForAddr(c *tls.Config, addr netip.AddrPort) *tls.Config {
	if c.ServerName != "" {
		return c
	}
	c = c.Clone()
	c.ServerName = addr.Addr().Unmap().String()
	return c
}
