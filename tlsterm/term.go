// Package tlsterm terminates TLS on gale's event loops with crypto/tls, unforked.
//
// A connection the listener's dispatcher recognized as TLS comes to a Terminator
// (an engine.Handler). Its handshake runs on a bounded Pool of goroutines: the loop
// pushes the bytes that arrive to the handshake goroutine and the goroutine posts
// the records crypto/tls writes back to the loop. Once the handshake is complete
// no goroutine is involved any more: the loop feeds each read to crypto/tls through
// a net.Conn adapter whose Read reports a temporary error when the bytes are used
// up (crypto/tls keeps a partial record and its state on temporary errors), passes
// the plaintext to the protocol negotiated with ALPN (HTTP/1.1 through
// server.Listener.HTTP1Over, h2 when the listener's handler can run under a
// layer), and encrypts what that protocol writes straight into the engine
// connection's output queue. An idle connection holds no goroutine and no buffer
// of the terminator's; what crypto/tls keeps is described in docs/tls.md.
package tlsterm

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/server"
)

// Errors a Terminator closes connections with; all are connection-level.
var (
	// ErrHandshakeTimeout closes a connection whose handshake did not finish in time.
	ErrHandshakeTimeout = errors.New("tlsterm: handshake not completed in time")
	// ErrHandshakeRefused closes a connection when every handshake worker is busy
	// and the queue is full.
	ErrHandshakeRefused = errors.New("tlsterm: too many handshakes in progress")
	// ErrHandshakeTooLarge closes a connection that sent more handshake bytes than
	// Options.MaxHandshakeBytes before the handshake completed.
	ErrHandshakeTooLarge = errors.New("tlsterm: handshake input exceeds the limit")
)

// LayeredHandler is an engine.Handler that can serve a connection under a
// server.Layer (writing through it, never to the engine connection); *server.HTTP2
// is one. The Terminator offers ALPN "h2" only when it has one for h2
// (Options.H2, or the listener's), and then calls OpenLayered instead of OnOpen.
type LayeredHandler = server.LayeredHandler

// Options configure a Terminator.
type Options struct {
	// Engine runs the listener (required: Server.Engine()).
	Engine *engine.Engine
	// Config is the TLS configuration: certificates (or GetCertificate), versions,
	// cipher suites, client authentication. MinVersion below TLS 1.2 is raised to
	// it; NextProtos is set by the Terminator. Required.
	Config *tls.Config
	// HandshakeTimeout bounds a handshake, from the first byte (default 10s).
	HandshakeTimeout time.Duration
	// MaxHandshakeBytes bounds the client's bytes buffered while a handshake is in
	// progress (default 256 KiB, room for large client certificate chains).
	MaxHandshakeBytes int
	// Pool runs the handshakes (default: a pool of its own with NewPool's defaults).
	Pool *Pool
	// H2 serves connections that negotiate "h2" with ALPN (a *server.HTTP2). When
	// nil, Bind takes the listener's ForALPN("h2") if it is a LayeredHandler; when
	// neither, h2 is not offered. Setting it here, rather than in the listener's
	// Dispatch.H2, keeps cleartext HTTP/2 prefaces away from HTTP/2 on a TLS port.
	H2 LayeredHandler
	// Challenge, when set, may answer a ClientHello with a configuration of its
	// own: ACME's TLS-ALPN-01 validation (acmecert.Manager.ChallengeConfig). A
	// connection that negotiates ALPN "acme-tls/1" is closed once its handshake
	// is complete, as RFC 8737 §3 requires; no protocol serves it.
	Challenge func(*tls.ClientHelloInfo) *tls.Config
	// ClientAuth, when set, asks clients for certificates and checks them the way
	// nginx's ssl_verify_client does: the handshake completes either way and the
	// result is the layer's ClientCert, which the protocols' handlers act on
	// (SetConfigAuth replaces it).
	ClientAuth *ClientAuth
}

// Terminator is the engine.Handler of TLS connections of one listener. It is
// shared by every loop; per-connection state lives in per-loop maps.
type Terminator struct {
	opts  Options
	base  *tls.Config             // fixed for the terminator's life: holds the session ticket keys
	cur   atomic.Pointer[serving] // what handshakes use now (SetConfig)
	up    atomic.Pointer[uppers]  // set by Bind; nil before
	loops []*tloop                // index: loop ID

	opened  atomic.Uint64 // handshakes completed
	plainIn atomic.Uint64 // decrypted bytes delivered
}

// serving is the configuration new handshakes use. Immutable.
type serving struct {
	all  *tls.Config // the configuration, with h2 in its ALPN offer when served
	h1   *tls.Config // all without h2 in its ALPN offer (h2Usable)
	auth *ClientAuth // client certificates asked for and checked; nil: as all says
}

// uppers are the protocol handlers of the bound listener. Immutable.
type uppers struct {
	http1 engine.Handler
	h2    LayeredHandler // nil: h2 not offered
}

// tloop is one loop's state; owned by that loop.
type tloop struct {
	conns map[*engine.Conn]*tconn
	buf   []byte // decrypted input handed to the upper handler
	// batch is the plaintext the batching connection wrote during its upper
	// handler's OnData, encrypted as one record when OnData returns (a response
	// head and body, or pipelined responses, in one record instead of one per
	// write). At most maxPlain bytes; nil until first used.
	batch    []byte
	batching *tconn // the connection whose OnData is running with batch; nil when none
}

// acmeALPN is the ALPN protocol of ACME TLS-ALPN-01 validation (RFC 8737).
const acmeALPN = "acme-tls/1"

// maxPlain is the largest plaintext of one TLS record.
const maxPlain = 16 << 10

var (
	_ engine.Handler       = (*Terminator)(nil)
	_ engine.FlushHandler  = (*Terminator)(nil)
	_ engine.ResumeHandler = (*Terminator)(nil)
	_ server.Handover      = (*tconn)(nil)
	_ LayeredHandler       = (*server.HTTP2)(nil)
)

// New returns a Terminator; put it in server.Dispatch.TLS and Bind it to the
// listener ListenDispatch returns (Listen does both). Connections that arrive
// before Bind are closed.
func New(opts Options) (*Terminator, error) {
	if opts.Engine == nil || opts.Config == nil {
		return nil, errors.New("tlsterm: Options.Engine and Config are required")
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.MaxHandshakeBytes <= 0 {
		opts.MaxHandshakeBytes = 256 << 10
	}
	if opts.Pool == nil {
		opts.Pool = NewPool(0, 0, 0)
	}
	t := &Terminator{opts: opts}
	t.initLoops(len(opts.Engine.Loops()))
	t.base = &tls.Config{MinVersion: tls.VersionTLS12}
	challenge := opts.Challenge
	t.base.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if challenge != nil {
			if c := challenge(h); c != nil {
				return c, nil
			}
		}
		s := t.cur.Load()
		if rc, ok := h.Conn.(*recordConn); ok {
			rc.auth = s.auth // the handshake goroutine checks the certificate with it
		}
		if s.all.NextProtos[0] == "h2" && !h2Usable(h, s.all) {
			return s.h1, nil
		}
		return s.all, nil
	}
	t.SetConfigAuth(opts.Config, opts.ClientAuth)
	return t, nil
}

// initLoops makes the per-loop state of n loops.
func (t *Terminator) initLoops(n int) {
	for range n {
		t.loops = append(t.loops, &tloop{conns: map[*engine.Conn]*tconn{}, buf: make([]byte, 0, engine.MaxUnconsumed+maxPlain)})
	}
}

// Bind makes l's protocol handlers serve the decrypted streams: HTTP/1.1 through
// l.HTTP1Over, and h2 (offered with ALPN from now on) when l.ForALPN("h2") is a
// LayeredHandler.
func (t *Terminator) Bind(l *server.Listener) {
	u := &uppers{http1: l.HTTP1Over(func(ec *engine.Conn) server.Layer { return t.loops[ec.Loop().ID()].conns[ec] })}
	if h, ok := l.ForALPN("h2").(LayeredHandler); ok {
		u.h2 = h
	}
	if t.opts.H2 != nil {
		u.h2 = t.opts.H2
	}
	t.up.Store(u)
	t.SetConfigAuth(t.opts.Config, t.opts.ClientAuth)
}

// SetConfig replaces the TLS configuration for handshakes that start afterwards
// (a reload: new certificates, versions, suites), with no ClientAuth. Open
// connections keep theirs, and session tickets issued before stay valid.
func (t *Terminator) SetConfig(c *tls.Config) { t.SetConfigAuth(c, nil) }

// SetConfigAuth replaces the TLS configuration and the client certificate
// checks together, as SetConfig does; a is nil or its Mode is VerifyOff to
// leave client authentication to c.
func (t *Terminator) SetConfigAuth(c *tls.Config, a *ClientAuth) {
	t.opts.Config, t.opts.ClientAuth = c, a
	c = c.Clone()
	if a != nil && a.Mode == VerifyOff {
		a = nil
	}
	if a != nil {
		// crypto/tls asks for a certificate and checks the client's signature with
		// it; the chain is verified after the handshake (ClientAuth.check), so that
		// a client without one, or with a bad one, completes its handshake.
		c.ClientAuth, c.ClientCAs = tls.RequestClientCert, a.CAs
	}
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	// http/1.0 as nginx offers it: curl --http1.0 sends that alone, and crypto/tls
	// fails a handshake whose ALPN offer has nothing in common with ours.
	c.NextProtos = []string{"http/1.1", "http/1.0"}
	c.WrapSession = t.wrapSession
	c.UnwrapSession = t.unwrapSession
	s := &serving{all: c, h1: c, auth: a}
	if u := t.up.Load(); u != nil && u.h2 != nil {
		s.all = c.Clone()
		s.all.NextProtos = []string{"h2", "http/1.1", "http/1.0"}
	}
	t.cur.Store(s)
}

// sniExtra tags the SessionState.Extra entry that holds the SNI name a session
// was established for (lower case; empty when the client sent none).
const sniExtra = "gale-sni\x00"

// wrapSession is the tls.Config.WrapSession of every handshake: the session
// ticket, encrypted with the terminator's ticket keys (SetTicketKeys, else
// crypto/tls's own), records the connection's SNI name so that unwrapSession
// can refuse to resume it under another name.
func (t *Terminator) wrapSession(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	ss.Extra = append(ss.Extra, []byte(sniExtra+strings.ToLower(cs.ServerName)), t.cur.Load().auth.sessionTag())
	return t.base.EncryptTicket(cs, ss)
}

// unwrapSession is the tls.Config.UnwrapSession of every handshake. It resumes
// a ticket only when the client sends the SNI name the session was established
// for (compared without case): RFC 6066 §3 says a server "MUST NOT accept the
// request to resume the session if the server_name extension contains a
// different name". Another name, or a ticket without a recorded name (issued
// before gale recorded it), gets a full handshake, and with it the certificate
// and client authentication of the name it asks for. So does a ticket issued
// under another client authentication (ClientAuth.resumes), or for a name the
// current certificates no longer serve.
func (t *Terminator) unwrapSession(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	ss, err := t.base.DecryptTicket(identity, cs)
	if err != nil || ss == nil {
		return ss, err
	}
	want := sniExtra + strings.ToLower(cs.ServerName)
	if !slices.ContainsFunc(ss.Extra, func(e []byte) bool { return string(e) == want }) {
		return nil, nil
	}
	cur := t.cur.Load()
	if !cur.auth.resumes(ss.Extra) {
		return nil, nil // another client authentication: a full handshake asks for the certificate
	}
	if g := cur.all.GetCertificate; g != nil {
		// A resumed handshake chooses no certificate: refuse a name the current
		// configuration no longer serves (removed by a reload, under unknown_sni:
		// reject), so that the full handshake refuses it as a new client's would.
		if c, err := g(&tls.ClientHelloInfo{ServerName: cs.ServerName}); err != nil || c == nil {
			return nil, nil
		}
	}
	return ss, nil
}

// Pool returns the handshake pool.
func (t *Terminator) Pool() *Pool { return t.opts.Pool }

// Stats are a Terminator's counters.
type Stats struct {
	Handshakes uint64 // completed handshakes
	PlainBytes uint64 // decrypted bytes delivered to the protocols
}

// Stats returns the terminator's counters.
func (t *Terminator) Stats() Stats {
	return Stats{Handshakes: t.opened.Load(), PlainBytes: t.plainIn.Load()}
}

// Connection states.
const (
	csHandshake = iota // a pool goroutine owns the tls.Conn
	csOpen             // handshake done: the loop feeds records
	csDone             // closed, or the handshake failed
)

// tconn is one TLS connection. Fields are owned by the connection's loop except
// raw's handshake fields (see recordConn) and tc, which the handshake goroutine
// uses until it posts its result.
type tconn struct {
	t     *Terminator
	tl    *tloop
	ec    *engine.Conn
	raw   *recordConn
	tc    *tls.Conn
	up    *uppers        // the listener's handlers when the connection opened
	upper engine.Handler // the protocol served, once open
	held  []byte         // decrypted input the upper handler left unconsumed; nil when none
	state uint8
	// paused is set when a delivery stopped because reading was paused, so
	// crypto/tls may hold records it took and has not decrypted; OnResume then
	// delivers them. Owned by the loop.
	paused bool
	eof    bool // the upper handler got OnEOF
	// eofLater: the peer's FIN came while records sent before it were still
	// undelivered (the upper handler paused with records inside crypto/tls, or a
	// Dialer's handshake was still running); OnEOF is passed on once a delivery has
	// used them up. Owned by the loop.
	eofLater bool
	ended    bool // close_notify sent

	handovers uint8 // counts Handover calls, so deliver sees a switch during OnData

	cl *clientState // connections a Dialer opened; nil on the server side

	// cert is what the handshake goroutine found of the client's certificate
	// when a ClientAuth asked for one, else nil; immutable once the handshake's
	// result is posted.
	cert   *server.ClientCert
	chains [][]*x509.Certificate // the chains cert was verified with, for ConnectionState

	// failed is the read error that made the connection close once its alert
	// has gone out (readFailed); OnClose reports it to the upper handler.
	failed error
}

// OnOpen starts the handshake on the pool.
func (t *Terminator) OnOpen(ec *engine.Conn) {
	tl := t.loops[ec.Loop().ID()]
	c := &tconn{t: t, tl: tl, ec: ec}
	c.raw = newRecordConn(ec, &t.opts.Pool.cpu)
	c.tc = tls.Server(c.raw, t.base)
	tl.conns[ec] = c
	c.up = t.up.Load()
	ec.SetTimeout(t.opts.HandshakeTimeout)
	p := t.opts.Pool
	if c.up == nil || !p.submit(c.handshake) {
		c.state = csDone
		ec.Close(ErrHandshakeRefused)
		return
	}
	p.started.Add(1)
}

// handshake runs on a pool goroutine.
func (c *tconn) handshake() {
	err := c.tc.Handshake()
	if a := c.raw.auth; err == nil && a != nil {
		c.cert, c.chains = a.verify(c.tc.ConnectionState().PeerCertificates, time.Now())
	}
	out := c.raw.takeOut() // the last flight, an alert or session tickets
	ec := c.ec
	ec.Loop().Post(func() {
		if len(out) > 0 && !ec.Closed() {
			ec.Write(out)
		}
		c.handshakeDone(err)
	})
}

// handshakeDone runs on the loop when the goroutine has finished.
func (c *tconn) handshakeDone(err error) {
	if c.state != csHandshake {
		return // closed meanwhile (timeout, client gone)
	}
	ec := c.ec
	if err != nil {
		c.state = csDone
		c.t.opts.Pool.failed.Add(1)
		if c.cl != nil {
			ec.Close(handshakeError(ec, err))
			return
		}
		ec.CloseAfterFlush(false) // the alert crypto/tls wrote goes out first
		return
	}
	c.t.opened.Add(1)
	c.t.opts.Pool.completed.Add(1)
	c.state = csOpen
	c.raw.onLoop = true
	ec.CancelTimeout()
	if c.cl != nil {
		c.clientOpen()
		return
	}
	proto := c.tc.ConnectionState().NegotiatedProtocol
	if proto == acmeALPN {
		c.state = csDone
		ec.CloseAfterFlush(false)
		return
	}
	if proto == "h2" && c.up.h2 != nil {
		c.upper = c.up.h2
		c.up.h2.OpenLayered(ec, c)
	} else {
		c.upper = c.up.http1
		c.upper.OnOpen(ec)
	}
	c.deliver(nil)
}

// OnData pushes handshake bytes to the goroutine, or feeds records to crypto/tls
// and the plaintext to the upper handler. Bytes are left unconsumed only while
// the upper handler does not read (they stay the engine's, bounded by its read).
func (t *Terminator) OnData(ec *engine.Conn, in []byte) int {
	c := t.loops[ec.Loop().ID()].conns[ec]
	switch c.state {
	case csHandshake:
		if c.raw.push(in) > t.opts.MaxHandshakeBytes {
			c.state = csDone
			t.opts.Pool.failed.Add(1)
			c.raw.shut()
			ec.Close(ErrHandshakeTooLarge)
		}
		return len(in)
	case csOpen:
		return c.deliver(in)
	}
	return len(in)
}

// deliver feeds in to crypto/tls and passes the plaintext, after the input held
// from before, to the upper handler until it stops reading, the input is used up
// or the connection fails. It returns how much of in crypto/tls took.
func (c *tconn) deliver(in []byte) int {
	r, ec := c.raw, c.ec
	defer c.eofDue() // last: once paused is known
	r.src, r.off = in, 0
	defer func() { r.src = nil }()
	first := len(c.held) > 0
	c.paused = false
	defer func() { c.paused = c.state == csOpen && !ec.Closed() && ec.ReadPaused() }()
	for c.state == csOpen && !ec.Closed() && !ec.ReadPaused() {
		buf := append(c.tl.buf[:0], c.held...)
		n, err := c.tc.Read(buf[len(buf):min(cap(buf), len(buf)+maxPlain)])
		if n > 0 || first {
			first = false
			total := len(buf) + n
			c.t.plainIn.Add(uint64(n))
			handovers := c.handovers
			own := c.tl.batching == nil
			if own {
				c.tl.batching = c
			}
			k := c.upper.OnData(ec, buf[:total])
			if own {
				c.flushBatch()
				c.tl.batching = nil
			}
			c.hold(buf[k:total])
			if len(c.held) > engine.MaxUnconsumed {
				ec.Close(engine.ErrInputOverflow)
				break
			}
			if c.handovers != handovers && len(c.held) > 0 {
				first = true // the new handler gets what the old one left, now
				continue
			}
			if err == nil {
				continue
			}
		}
		if err != nil {
			c.readFailed(err)
			break
		}
	}
	return r.off
}

// eofDue passes on a FIN that came behind undelivered records once a delivery
// did not stop for a pause: every record before it has then reached the upper
// handler (a partial one left in the input can never complete).
func (c *tconn) eofDue() {
	if !c.eofLater || c.paused || c.state != csOpen || c.ec.Closed() {
		return
	}
	c.eofLater = false
	if !c.eof {
		c.eof = true
		c.upper.OnEOF(c.ec)
	}
}

// hold keeps b (a view of the loop's buffer) as the input held for the upper
// handler, in a buffer of the connection's own; nothing when b is empty.
func (c *tconn) hold(b []byte) {
	if len(b) == 0 {
		c.held = nil
		return
	}
	c.held = append(c.held[:0:0], b...)
}

// readFailed handles an error of crypto/tls's Read on the loop. An alert from
// the peer closes at once. Any other error is a record or message crypto/tls
// refused (a bad MAC, a malformed or unexpected record, a ClientHello asking to
// renegotiate, an unexpected post-handshake message), for which it has queued
// a fatal alert and fails every later write; it returns the error sometimes as
// a "local error" *net.OpError, sometimes bare after sending the alert
// (handleRenegotiation, handlePostHandshakeMessage). The connection closes
// once that alert has gone out, lingering so that the peer still sending does
// not turn it into a reset; the upper handler's OnClose gets the error.
func (c *tconn) readFailed(err error) {
	var oe *net.OpError
	switch {
	case err == errWouldBlock:
	case err == io.EOF: // close_notify: the client ends its side
		if !c.eof {
			c.eof = true
			c.upper.OnEOF(c.ec)
		}
	case errors.As(err, &oe) && oe.Op == "remote error":
		c.ec.Close(err)
	default:
		c.failed = err
		c.ec.CloseAfterFlush(true)
	}
}

// OnEOF passes the peer's half-close to the upper handler (a TCP FIN without a
// close_notify is treated alike: many clients do that), or ends a handshake. A
// Dialer's handshake reads what arrived before the FIN first, so that the
// connection fails with what the server said (an alert such as
// no_application_protocol or bad_certificate), not with a bare close; if it
// succeeds, the FIN is passed on after the records that came behind it. A FIN
// that comes while the upper handler is paused with records not yet delivered
// is passed on after them too (eofDue), never ahead of bytes sent before it.
func (t *Terminator) OnEOF(ec *engine.Conn) {
	c := t.loops[ec.Loop().ID()].conns[ec]
	switch {
	case c.state == csOpen:
		if c.paused || ec.Unread() > 0 {
			c.eofLater = true
			return
		}
		if !c.eof {
			c.eof = true
			c.upper.OnEOF(ec)
		}
	case c.state == csHandshake && c.cl != nil && c.raw != nil:
		c.eofLater = true
		c.raw.shut() // its Read fails once the pushed bytes are used up
	default:
		ec.Close(nil)
	}
}

// OnDrain passes the event to the upper handler.
func (t *Terminator) OnDrain(ec *engine.Conn) {
	if c := t.loops[ec.Loop().ID()].conns[ec]; c.state == csOpen {
		c.upper.OnDrain(ec)
	}
}

// OnFlushed passes the event to the upper handler if it asked for it.
func (t *Terminator) OnFlushed(ec *engine.Conn) {
	if c := t.loops[ec.Loop().ID()].conns[ec]; c.state == csOpen {
		if f, ok := c.upper.(engine.FlushHandler); ok {
			f.OnFlushed(ec)
		}
	}
}

// OnTimeout ends a handshake that took too long, or passes the upper handler's
// timer to it.
func (t *Terminator) OnTimeout(ec *engine.Conn) {
	c := t.loops[ec.Loop().ID()].conns[ec]
	switch c.state {
	case csOpen:
		c.upper.OnTimeout(ec)
	case csHandshake:
		t.opts.Pool.timedOut.Add(1)
		t.opts.Pool.failed.Add(1)
		c.state = csDone
		ec.Close(ErrHandshakeTimeout)
	}
}

// OnShutdown closes connections still in their handshake and passes open ones to
// the upper handler.
func (t *Terminator) OnShutdown(ec *engine.Conn) {
	c := t.loops[ec.Loop().ID()].conns[ec]
	if c.state == csOpen {
		c.upper.OnShutdown(ec)
		return
	}
	ec.Close(engine.ErrShutdown)
}

// OnClose releases the connection: a handshake goroutine waiting for input is
// woken, and the upper handler gets its OnClose.
func (t *Terminator) OnClose(ec *engine.Conn, err error) {
	tl := t.loops[ec.Loop().ID()]
	c := tl.conns[ec]
	delete(tl.conns, ec)
	wasOpen := c.state == csOpen
	c.state = csDone
	c.held = nil
	c.raw.shut()
	if err == nil {
		err = c.failed // the close was the end of a failed read: report it, not an orderly close
	}
	if wasOpen || c.cl != nil { // a Dialer's handler learns of every end, a failed handshake too
		c.upper.OnClose(ec, err)
	}
}

// Write encrypts p into records queued on the engine connection. During the
// upper handler's OnData, small writes are gathered and encrypted together when
// it returns (see tloop.batch), so they leave as one record.
func (c *tconn) Write(p []byte) error {
	if c.ended || c.ec.Closed() {
		return engine.ErrClosed
	}
	if c.cl != nil && c.state == csHandshake {
		c.cl.pending = append(c.cl.pending, p...)
		return nil
	}
	if tl := c.tl; tl.batching == c {
		if len(tl.batch)+len(p) <= maxPlain {
			if tl.batch == nil {
				tl.batch = make([]byte, 0, maxPlain)
			}
			tl.batch = append(tl.batch, p...)
			return nil
		}
		c.flushBatch() // what came first goes first
	}
	_, err := c.tc.Write(p)
	return err
}

// flushBatch encrypts the plaintext gathered by Write into the engine
// connection's queue; a failure closes the connection (the writes it holds
// were reported written).
func (c *tconn) flushBatch() {
	tl := c.tl
	if tl.batching != c || len(tl.batch) == 0 {
		return
	}
	b := tl.batch
	tl.batch = b[:0]
	if c.ended || c.ec.Closed() {
		return
	}
	if _, err := c.tc.Write(b); err != nil {
		c.ec.Close(err)
	}
}

// Buffered reports the ciphertext queued on the engine connection, with the
// plaintext gathered for one record (and, on a Dialer's connection in its
// handshake, the plaintext waiting for it).
func (c *tconn) Buffered() int {
	n := c.ec.Buffered()
	if c.tl.batching == c {
		n += len(c.tl.batch)
	}
	if c.cl != nil {
		n += len(c.cl.pending)
	}
	return n
}

// Closed reports whether the connection has gone.
func (c *tconn) Closed() bool { return c.ec.Closed() }

// WantDrain asks the engine for OnDrain, which the Terminator passes up. After
// close_notify it does nothing: no write can succeed any more, and a protocol
// that asks again from OnDrain whenever its write fails (HTTP/2 with frames left
// after the close) would otherwise get OnDrain again in the same loop
// iteration, for ever, and never reach the close that follows the flush.
func (c *tconn) WantDrain() {
	if c.ended {
		return
	}
	if c.cl != nil && c.state == csHandshake {
		c.cl.drain = true // asked of the engine once the held plaintext is queued
		return
	}
	c.ec.WantDrain()
}

// Unread reports the decrypted bytes held for the upper handler.
func (c *tconn) Unread() int { return len(c.held) }

// ResumeRead resumes reading; the engine then calls OnResume, which delivers
// what the connection holds.
func (c *tconn) ResumeRead() { c.ec.ResumeRead() }

// OnResume delivers, once reading has restarted, what waits on the loop's side
// of the socket: the plaintext held for the upper handler, and the records
// crypto/tls took from an earlier read and has not decrypted yet (one engine
// read often carries several records, and the handshake goroutine's last read
// may carry records behind the handshake; when the upper handler paused after
// the first, the others wait inside crypto/tls and no socket event would ever
// bring them out). The engine calls it for every way reading resumes: the
// layer's ResumeRead, the engine connection's, and the automatic resume when
// queued output falls to the low-water mark.
func (t *Terminator) OnResume(ec *engine.Conn) {
	if c := t.loops[ec.Loop().ID()].conns[ec]; c.state == csOpen && (c.paused || len(c.held) > 0) {
		c.deliver(nil)
	}
}

// CloseNotify sends the close_notify alert; later writes fail.
func (c *tconn) CloseNotify() {
	if c.ended || c.state != csOpen || c.ec.Closed() {
		return
	}
	c.flushBatch()
	c.ended = true
	c.tc.CloseWrite()
}

// Handover makes h the protocol served on the connection (Ctx.Upgrade or Hijack
// under TLS): h.OpenLayered runs now, and the input held for HTTP/1 and every later
// record's plaintext reach h.OnData.
func (c *tconn) Handover(h server.LayeredHandler) {
	c.upper = h
	c.handovers++
	h.OpenLayered(c.ec, c)
}

// ConnectionState returns the connection's TLS state: version, cipher suite, ALPN,
// SNI and the client's verified certificates (mutual TLS; with a ClientAuth, the
// chains it verified).
func (c *tconn) ConnectionState() tls.ConnectionState {
	st := c.tc.ConnectionState()
	if st.VerifiedChains == nil {
		st.VerifiedChains = c.chains
	}
	return st
}
