package wsserver

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/os/pool"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/websocket"
)

// Defaults of Options.
const (
	DefaultPingInterval = 30 * time.Second
	DefaultIdleTimeout  = 60 * time.Second
	DefaultCloseTimeout = 5 * time.Second
	DefaultWriteTimeout = 60 * time.Second
	DefaultHighWater    = 1 << 20
	DefaultCompressMin  = 64
)

// Options configures a Server. The zero value is usable: same-origin handshakes, no
// subprotocol, no compression, 1 MiB messages and the defaults above.
type Options struct {
	// AllowedOrigins and Subprotocols are the handshake policy (see
	// websocket.HandshakeOptions).
	AllowedOrigins []string
	Subprotocols   []string
	// Compression enables permessage-deflate with Deflate's parameters; a zero Deflate
	// means websocket.DefaultDeflateOptions (no context takeover either way, so that an
	// idle connection holds no compression state).
	Compression bool
	Deflate     websocket.DeflateOptions
	// CompressMin is the shortest message sent compressed; 0 means DefaultCompressMin.
	CompressMin int
	// MaxMessageBytes bounds one received message (decompressed), 0 for
	// websocket.DefaultMaxMessageBytes. A negative value (no limit) requires a
	// PartHandler, since whole-message delivery would hold messages of any size.
	MaxMessageBytes int64
	// PingInterval is how long the peer may stay silent before the server sends a ping;
	// 0 means DefaultPingInterval, negative disables pings.
	PingInterval time.Duration
	// IdleTimeout is how long the peer may send no frame at all (pongs count) before
	// the server closes with 1001; 0 means DefaultIdleTimeout, negative disables it.
	IdleTimeout time.Duration
	// CloseTimeout bounds the close handshake: after the server's close frame, the
	// connection is reset if the peer's does not arrive in time. 0 means
	// DefaultCloseTimeout.
	CloseTimeout time.Duration
	// WriteTimeout is the longest wait for the peer to take any queued byte (see
	// engine.Conn.SetWriteTimeout); 0 means DefaultWriteTimeout, negative disables it.
	WriteTimeout time.Duration
	// HighWater is the most output that may be queued when a message is sent (see the
	// package documentation); 0 means DefaultHighWater.
	HighWater int
	// OverflowCode is the close code of the high-water policy: websocket.ClosePolicy
	// (1008, the default when 0) or websocket.CloseTryAgainLater (1013).
	OverflowCode uint16
}

// Stats are a Server's counters since it was made.
type Stats struct {
	Opened         uint64 // handshakes accepted
	Refused        uint64 // handshakes refused (4xx)
	Closed         uint64 // connections closed
	ProtocolErrors uint64 // connections failed for a protocol violation (1002, 1007, 1009)
	Overflows      uint64 // connections closed by the high-water policy
	CloseTimeouts  uint64 // close handshakes that ran out of time
	IdleTimeouts   uint64 // connections closed for silence
}

// Errors reported by Conn methods and to Handler.OnClose.
var (
	// ErrClosing is returned by sends after the close handshake has started.
	ErrClosing = errors.New("wsserver: connection is closing")
	// ErrOverflow is returned by a send refused by the high-water policy, and reported
	// to OnClose for the connection it closed.
	ErrOverflow = errors.New("wsserver: output over the high-water mark")
	// ErrCloseTimeout is reported to OnClose when the peer's close frame did not
	// arrive within the close timeout.
	ErrCloseTimeout = errors.New("wsserver: close handshake timed out")
	// ErrIdle is reported to OnClose for a connection closed by the idle timeout.
	ErrIdle = errors.New("wsserver: no frame received within the idle timeout")
	// ErrControlPayload is returned by Ping for a payload over 125 bytes.
	ErrControlPayload = errors.New("wsserver: control payload over 125 bytes")
	// ErrCloseCode is returned by Close for a code that may not be sent.
	ErrCloseCode = errors.New("wsserver: close code may not be sent")
)

// Handler is the application side of WebSocket connections. Its methods run on the
// connection's loop and must not block.
type Handler interface {
	// OnOpen is called once the handshake response is queued.
	OnOpen(c *Conn)
	// OnMessage is called with each whole text or binary message. msg is valid only
	// during the call (copy what must outlive it).
	OnMessage(c *Conn, op websocket.Opcode, msg []byte)
	// OnClose is called exactly once when the connection has closed. code is the
	// peer's close code (websocket.CloseNoStatus for a close frame without one,
	// websocket.CloseAbnormal when no close frame arrived); err is nil for a clean
	// close handshake, a *websocket.ProtocolError when the peer broke the protocol, or
	// why the connection ended (ErrOverflow, ErrIdle, ErrCloseTimeout, a socket error).
	OnClose(c *Conn, code uint16, err error)
}

// PartHandler is a Handler that takes large uncompressed messages in parts: a message
// that is not one whole frame within one read is passed to OnPart piece by piece, in
// order, with fin set on its last piece (which may be empty), instead of to OnMessage.
type PartHandler interface {
	Handler
	OnPart(c *Conn, op websocket.Opcode, part []byte, fin bool)
}

// DrainHandler is a Handler told when queued output has fallen to the engine's
// low-water mark after Conn.WantDrain (the base of drop or pause policies).
type DrainHandler interface {
	Handler
	OnDrain(c *Conn)
}

// ClosingHandler is a Handler told when a connection stops being open: the server
// queued its close frame (Conn.Close, the idle timeout, the high-water policy,
// shutdown), answered the peer's close frame, or failed the connection for a protocol
// error. No data frame may follow a close frame on the wire (RFC 6455 §5.5.1): the
// Conn's own sends refuse with ErrClosing from then on, and an application that
// queues frames on the engine connection itself (package pubsub's fan-out) must stop
// at OnClosing. It is called once, on the connection's loop, and OnClose follows when
// the connection has closed; a connection that closes without a close handshake (the
// peer went away) gets OnClose alone.
type ClosingHandler interface {
	Handler
	OnClosing(c *Conn)
}

// Server accepts WebSocket handshakes and serves the connections with a Handler. It
// is the engine.Handler of every connection it upgrades (one value, per-connection
// state in the engine connection's context). It is safe for concurrent use.
type Server struct {
	h     Handler
	part  PartHandler    // h as a PartHandler, or nil
	drain DrainHandler   // h as a DrainHandler, or nil
	shut  ClosingHandler // h as a ClosingHandler, or nil
	hs    websocket.HandshakeOptions

	maxMsg       int64
	ping, idle   time.Duration // <= 0: off
	closeTimeout time.Duration
	writeTimeout time.Duration
	highWater    int
	overflowCode uint16
	compressMin  int
	level        int

	loops sync.Map // *engine.Loop -> *loopState

	opened, refused, closed, protoErrs, overflows, closeTimeouts, idleTimeouts atomic.Uint64
}

var _ engine.Handler = (*Server)(nil)
var _ server.Handler = (*Server)(nil)

// New returns a Server for h with opts.
func New(h Handler, opts Options) (*Server, error) {
	if h == nil {
		return nil, errors.New("wsserver: nil Handler")
	}
	s := &Server{h: h, maxMsg: opts.MaxMessageBytes}
	s.part, _ = h.(PartHandler)
	s.drain, _ = h.(DrainHandler)
	s.shut, _ = h.(ClosingHandler)
	if s.maxMsg < 0 && s.part == nil {
		return nil, errors.New("wsserver: MaxMessageBytes without a limit needs a PartHandler")
	}
	if len(opts.Subprotocols) > 255 {
		return nil, errors.New("wsserver: more than 255 Subprotocols")
	}
	s.hs = websocket.HandshakeOptions{AllowedOrigins: opts.AllowedOrigins, Subprotocols: opts.Subprotocols}
	if opts.Compression {
		d := opts.Deflate
		if d == (websocket.DeflateOptions{}) {
			d = websocket.DefaultDeflateOptions()
		}
		s.hs.Deflate = &d
		s.level = d.Level
	}
	s.ping = orDefault(opts.PingInterval, DefaultPingInterval)
	s.idle = orDefault(opts.IdleTimeout, DefaultIdleTimeout)
	s.closeTimeout = orDefault(opts.CloseTimeout, DefaultCloseTimeout)
	if s.closeTimeout < 0 {
		return nil, errors.New("wsserver: CloseTimeout must not be negative")
	}
	s.writeTimeout = orDefault(opts.WriteTimeout, DefaultWriteTimeout)
	s.highWater = opts.HighWater
	if s.highWater <= 0 {
		s.highWater = DefaultHighWater
	}
	s.compressMin = opts.CompressMin
	if s.compressMin <= 0 {
		s.compressMin = DefaultCompressMin
	}
	switch opts.OverflowCode {
	case 0:
		s.overflowCode = websocket.ClosePolicy
	case websocket.ClosePolicy, websocket.CloseTryAgainLater:
		s.overflowCode = opts.OverflowCode
	default:
		return nil, fmt.Errorf("wsserver: OverflowCode %d: expected 1008 or 1013", opts.OverflowCode)
	}
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Opened: s.opened.Load(), Refused: s.refused.Load(), Closed: s.closed.Load(),
		ProtocolErrors: s.protoErrs.Load(), Overflows: s.overflows.Load(),
		CloseTimeouts: s.closeTimeouts.Load(), IdleTimeouts: s.idleTimeouts.Load(),
	}
}

// loopState is a Server's state on one loop; only that loop touches it.
type loopState struct {
	s       *Server
	pool    websocket.DeflatePool
	scratch []byte // frames of small messages are built here before Write copies them
	cbuf    []byte // compressed output of one message
	pending *Conn  // the connection being upgraded, picked up by OnOpen
	// bufs holds the buffers of messages collected from parts or inflated, taken and
	// given back without synchronisation.
	bufs pool.Cache
	// msgs holds the buffer of each connection collecting a message (bitParts).
	msgs map[*Conn][]byte
	// layers holds the Layer of each open connection under TLS (bitLayered).
	layers map[*engine.Conn]server.Layer
	// values holds the application's values of the loop's connections (bitValued).
	values map[*Conn]any
	// shared holds one deflater per set of parameters that keep no context either way
	// (Conn.dfi indexes it): such a deflater never holds a Compressor or Window, so
	// connections share it. owned holds the deflaters of connections that keep a
	// context (Conn.dfi is dfiOwn), and of any beyond the first dfiOwn-1 parameter sets.
	shared []*deflater
	owned  map[*Conn]*deflater
}

// setDeflater gives c the permessage-deflate state for parameters p: a shared one when
// neither side keeps its context, its own otherwise.
func (lp *loopState) setDeflater(c *Conn, p websocket.DeflateParams) {
	sendKeep, _ := p.Send(websocket.RoleServer)
	recvKeep, _ := p.Receive(websocket.RoleServer)
	if !sendKeep && !recvKeep {
		for i, d := range lp.shared {
			if d.params == p {
				c.dfi = uint8(i + 1)
				return
			}
		}
		if len(lp.shared) < dfiOwn-1 {
			lp.shared = append(lp.shared, &deflater{params: p})
			c.dfi = uint8(len(lp.shared))
			return
		}
	}
	if lp.owned == nil {
		lp.owned = make(map[*Conn]*deflater)
	}
	lp.owned[c] = &deflater{params: p}
	c.dfi = dfiOwn
}

// maxKeep bounds the capacity a loop's scratch buffers keep between messages.
const maxKeep = 64 << 10

func (s *Server) loop(l *engine.Loop) *loopState {
	if v, ok := s.loops.Load(l); ok {
		return v.(*loopState)
	}
	lp := &loopState{s: s}
	lp.pool.Level = s.level
	v, _ := s.loops.LoadOrStore(l, lp)
	return v.(*loopState)
}

// ServeGale answers a request with Upgrade, so that a Server can be a route's handler.
// A handshake that is accepted but cannot be handed over (server.Ctx.Upgrade's
// request-level errors: ErrLayered, ErrUpgradeBody, ErrUpgradeBusy) is answered with 500.
func (s *Server) ServeGale(c *server.Ctx) {
	err := s.Upgrade(c)
	if errors.Is(err, server.ErrLayered) || errors.Is(err, server.ErrUpgradeBody) || errors.Is(err, server.ErrUpgradeBusy) {
		c.Error(500, "cannot upgrade to WebSocket: "+err.Error())
	}
}

// Upgrade answers the opening handshake of the request on c. When the handshake is
// refused it answers with the refusal's status (400, 403, 405 or 426, see
// websocket.Handshake) and returns the *websocket.HandshakeError; the HTTP connection
// stays usable. When accepted it writes the 101 response, re-parents the connection
// to s and calls the Handler's OnOpen; bytes the client sent after its request reach
// the frame reader first. It must run on c's loop, inside ServeGale or a closure
// posted there; other errors are those of server.Ctx.Upgrade.
func (s *Server) Upgrade(c *server.Ctx) error {
	acc, err := websocket.Handshake(websocket.FromHTTP1(c.Request()), &s.hs)
	if err != nil {
		s.refused.Add(1)
		var he *websocket.HandshakeError
		if errors.As(err, &he) {
			for _, f := range he.Header {
				c.Header().Set(f[0], f[1])
			}
			c.Respond(he.Status, "text/plain; charset=utf-8", []byte(he.Reason+"\n"))
		}
		return err
	}
	ec := c.Conn()
	lp := s.loop(ec.Loop())
	wc := &Conn{ec: ec, lp: lp}
	if acc.Subprotocol != "" {
		wc.sub = uint8(1 + slices.Index(s.hs.Subprotocols, acc.Subprotocol))
	}
	wc.rd.Role = websocket.RoleServer
	wc.rd.MaxMessageBytes = s.maxMsg
	if acc.Compression {
		wc.rd.Compression = true
		lp.setDeflater(wc, acc.Deflate)
	}
	lp.scratch = acc.AppendHeaders(lp.scratch[:0])
	c.Header().AppendRaw(lp.scratch)
	lp.pending = wc
	if err := c.Upgrade(s); err != nil {
		lp.pending = nil
		return err
	}
	return nil
}

// OnOpen implements engine.Handler: it takes the connection Upgrade prepared.
func (s *Server) OnOpen(ec *engine.Conn) {
	lp := s.loop(ec.Loop())
	c := lp.pending
	lp.pending = nil
	if c == nil || c.ec != ec {
		ec.Close(errors.New("wsserver: connection opened without a handshake"))
		return
	}
	ec.SetContext(c)
	if s.writeTimeout > 0 {
		ec.SetWriteTimeout(s.writeTimeout)
	} else {
		ec.SetWriteTimeout(0)
	}
	c.touch()
	c.armKeepAlive(0)
	s.opened.Add(1)
	s.h.OnOpen(c)
}

func conn(ec *engine.Conn) *Conn {
	c, _ := ec.Context().(*Conn)
	return c
}

// OnData implements engine.Handler: it reads frames (see Conn.read).
func (s *Server) OnData(ec *engine.Conn, in []byte) int {
	c := conn(ec)
	if c == nil {
		return len(in)
	}
	return c.read(in)
}

// OnEOF implements engine.Handler: a peer that stops sending without a close frame
// ends the connection (reported as 1006), once what the server queued before — the
// answers to the messages that came before the FIN — has been sent (the write
// timeout bounds the wait). Closing at once lost them whenever the FIN arrived in
// the same read as the messages.
func (s *Server) OnEOF(ec *engine.Conn) {
	if c := conn(ec); c != nil {
		c.eof()
	}
	if !ec.Closed() {
		ec.CloseAfterFlush(false)
	}
}

// OnDrain implements engine.Handler and forwards to a DrainHandler.
func (s *Server) OnDrain(ec *engine.Conn) {
	if c := conn(ec); c != nil && s.drain != nil {
		s.drain.OnDrain(c)
	}
}

// OnTimeout implements engine.Handler: keep-alive, idle and close timers.
func (s *Server) OnTimeout(ec *engine.Conn) {
	if c := conn(ec); c != nil {
		c.timeout()
	}
}

// OnShutdown implements engine.Handler: a stopping server closes with 1001.
func (s *Server) OnShutdown(ec *engine.Conn) {
	if c := conn(ec); c != nil {
		_ = c.Close(websocket.CloseGoingAway, "server shutting down")
	}
}

// OnClose implements engine.Handler: it reports the end to the Handler and gives
// back the connection's buffers.
func (s *Server) OnClose(ec *engine.Conn, err error) {
	c := conn(ec)
	if c == nil {
		return
	}
	ec.SetContext(nil)
	c.dropLayer()
	c.released()
	code := c.got
	if code == 0 {
		code = websocket.CloseAbnormal
	}
	if c.fail != 0 {
		err = failures[c.fail]
	} else if c.state == stateDone && c.got != 0 {
		err = nil // a completed close handshake, whatever the socket did afterwards
	}
	s.closed.Add(1)
	s.h.OnClose(c, code, err)
	c.SetValue(nil) // the value stays readable in OnClose
}
