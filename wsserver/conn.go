package wsserver

import (
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/websocket"
)

// Connection states.
const (
	stateOpen    uint8 = iota // messages flow both ways
	stateClosing              // the server sent its close frame and waits for the peer's
	stateDone                 // no more frames either way; the socket is closing
)

// Conn is one WebSocket connection. It is owned by its loop: every method must be
// called there. The struct is 80 bytes, a size class (TestConnSize): what only some
// connections need lives in maps of the loop (the buffer of a message being collected,
// a TLS layer, the application's value, a deflater of its own) or is an index into a
// table of the loop (a shared deflater, the subprotocol).
type Conn struct {
	ec *engine.Conn
	lp *loopState
	rd websocket.Reader
	// lastRx is the loop clock (Unix nanoseconds) when bytes last arrived.
	lastRx int64
	got    uint16           // the peer's close code once its close frame arrived
	state  uint8            // stateOpen, stateClosing or stateDone
	msgOp  websocket.Opcode // the opcode of the message being collected or streamed
	fail   uint8            // why the server ended the connection: an index into failures
	sub    uint8            // the selected subprotocol: 1 + its index in Options.Subprotocols
	bits   uint8            // bitLayered, bitValued, bitParts
	// dfi locates the permessage-deflate state: 0 when not negotiated, dfiOwn when the
	// connection has its own (in the loop's owned map), else 1 + an index into the
	// loop's shared deflaters.
	dfi uint8
}

// dfiOwn is the Conn.dfi of a connection whose deflater is its own.
const dfiOwn = 255

// Conn.bits.
const (
	// bitLayered is set for a connection under a protocol layer (TLS): its output goes
	// through the Layer kept in the loop's layers map (layer.go).
	bitLayered uint8 = 1 << iota
	// bitValued is set while the application's value (SetValue) is in the loop's
	// values map.
	bitValued
	// bitParts is set while the current message is being collected or streamed in
	// parts; a collected message's buffer is in the loop's msgs map.
	bitParts
)

// deflater is a connection's permessage-deflate state. Compressors and decompressors
// are borrowed from the loop's pool per message; comp and win are held only when the
// negotiated parameters keep a context between messages. Without context either way
// the deflater is immutable and shared by the loop's connections with the same
// parameters (loopState.deflater).
type deflater struct {
	params websocket.DeflateParams
	comp   *websocket.Compressor // the server keeps its context
	win    *websocket.Window     // the client keeps its context
}

// deflater returns the connection's permessage-deflate state, or nil when it was not
// negotiated.
func (c *Conn) deflater() *deflater {
	switch c.dfi {
	case 0:
		return nil
	case dfiOwn:
		return c.lp.owned[c]
	}
	return c.lp.shared[c.dfi-1]
}

// parts reports whether the current message is being collected or streamed in parts.
func (c *Conn) parts() bool { return c.bits&bitParts != 0 }

// setParts sets or clears bitParts.
func (c *Conn) setParts(on bool) {
	if on {
		c.bits |= bitParts
	} else {
		c.bits &^= bitParts
	}
}

// Engine returns the engine connection (for socket options and diagnostics).
func (c *Conn) Engine() *engine.Conn { return c.ec }

// Loop returns the loop that owns the connection; other goroutines reach the
// connection with Loop().Post.
func (c *Conn) Loop() *engine.Loop { return c.ec.Loop() }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.ec.RemoteAddr() }

// Subprotocol returns the subprotocol selected in the handshake, or "".
func (c *Conn) Subprotocol() string {
	if c.sub == 0 {
		return ""
	}
	return c.lp.s.hs.Subprotocols[c.sub-1]
}

// Compression reports whether permessage-deflate was negotiated.
func (c *Conn) Compression() bool { return c.dfi != 0 }

// Value returns the value stored with SetValue, or nil (also once OnClose has returned).
func (c *Conn) Value() any {
	if c.bits&bitValued == 0 {
		return nil
	}
	return c.lp.values[c]
}

// SetValue stores the application's per-connection value (nil removes it). Values live
// in a map of the connection's loop rather than in the Conn, so that connections
// without one stay small (TestConnSize); Value is a map lookup.
func (c *Conn) SetValue(v any) {
	lp := c.lp
	if v == nil {
		if c.bits&bitValued != 0 {
			delete(lp.values, c)
			c.bits &^= bitValued
		}
		return
	}
	if lp.values == nil {
		lp.values = make(map[*Conn]any)
	}
	lp.values[c] = v
	c.bits |= bitValued
}

// Buffered reports how many bytes of output are queued.
func (c *Conn) Buffered() int { return c.buffered() }

// WantDrain asks for one DrainHandler.OnDrain call once queued output has fallen to
// the engine's low-water mark.
func (c *Conn) WantDrain() { c.wantDrain() }

// Open reports whether messages may still be sent.
func (c *Conn) Open() bool { return c.state == stateOpen && !c.ec.Closed() }

// SendText sends a text message; s must be UTF-8 (it is not checked).
func (c *Conn) SendText(s []byte) error { return c.Send(websocket.OpText, s) }

// SendBinary sends a binary message.
func (c *Conn) SendBinary(b []byte) error { return c.Send(websocket.OpBinary, b) }

// Send sends one message with opcode op (text or binary) in a single frame,
// compressed when permessage-deflate was negotiated and p is at least CompressMin
// bytes. p is copied (or compressed) before Send returns. It returns ErrClosing once
// the close handshake has started, engine.ErrClosed after the connection closed, and
// ErrOverflow when the high-water policy refused the message and closed the
// connection.
func (c *Conn) Send(op websocket.Opcode, p []byte) error {
	if err := c.sendable(); err != nil {
		return err
	}
	rsv1 := false
	if c.dfi != 0 && len(p) >= c.lp.s.compressMin {
		if out, ok := c.compress(p); ok {
			p, rsv1 = out, true
		}
	}
	err := c.writeFrame(true, op, rsv1, p)
	if rsv1 && cap(c.lp.cbuf) > maxKeep {
		c.lp.cbuf = nil
	}
	return err
}

// WriteFrame queues one complete frame that the caller built, copying it: a server
// frame (unmasked) holding a whole text or binary message, with RSV1 set only when
// the connection negotiated permessage-deflate and the payload was compressed without
// context within the negotiated window (see CompressesStateless). Under TLS it goes
// through the layer, like every frame of the connection; on a plain connection
// SendShared or the engine connection itself avoid the copy. It applies Send's checks
// and returns the same errors. It is for fan-out that builds one frame for many
// connections (package pubsub).
func (c *Conn) WriteFrame(frame []byte) error {
	if err := c.sendable(); err != nil {
		return err
	}
	return c.write(frame)
}

// Layered reports whether the connection runs under a protocol layer (TLS): its
// frames must then be written through the Conn (Send, SendShared, WriteFrame), never
// on the engine connection, which carries the layer's records.
func (c *Conn) Layered() bool { return c.bits&bitLayered != 0 }

// SendPart sends one frame of a fragmented message, uncompressed: op is text or
// binary on the first frame and websocket.OpContinuation on the others; fin ends the
// message. Control frames and other messages must not be sent until it has ended
// (the caller keeps that order).
func (c *Conn) SendPart(op websocket.Opcode, p []byte, fin bool) error {
	if err := c.sendable(); err != nil {
		return err
	}
	return c.writeFrame(fin, op, false, p)
}

// NewShared builds one unmasked, uncompressed frame holding a whole message, to be
// queued to many connections with SendShared without copying. The caller owns the
// reference NewShared returns and releases it once it has queued the frame; free, if
// not nil, runs once the last connection has sent it (on whichever goroutine released
// the last reference).
func NewShared(op websocket.Opcode, payload []byte, free func()) *engine.Shared {
	b := websocket.AppendFrameHeader(make([]byte, 0, 14+len(payload)), true, op, false, len(payload), nil)
	return engine.NewShared(append(b, payload...), free)
}

// SendShared queues a frame built by NewShared, holding a reference until it has been
// sent. It applies the same checks as Send. Compressed connections receive it
// uncompressed, which RFC 7692 allows.
func (c *Conn) SendShared(s *engine.Shared) error {
	if err := c.sendable(); err != nil {
		return err
	}
	return c.writeShared(s)
}

// sendable checks state and the high-water policy before a message.
func (c *Conn) sendable() error {
	switch {
	case c.ec.Closed():
		return engine.ErrClosed
	case c.state != stateOpen:
		return ErrClosing
	case c.fail != 0:
		// The peer's FIN came: the connection closes once what was queued before
		// it has gone (Server.OnEOF), and nothing more joins that queue.
		return engine.ErrClosed
	case c.buffered() > c.lp.s.highWater:
		c.lp.s.overflows.Add(1)
		c.setFail(ErrOverflow)
		c.startClose(c.lp.s.overflowCode, "output over the high-water mark")
		return ErrOverflow
	}
	return nil
}

// Ping sends a ping with payload p (at most 125 bytes).
func (c *Conn) Ping(p []byte) error {
	switch {
	case len(p) > websocket.MaxControlPayload:
		return ErrControlPayload
	case c.ec.Closed():
		return engine.ErrClosed
	case c.state != stateOpen:
		return ErrClosing
	}
	return c.writeFrame(true, websocket.OpPing, false, p)
}

// Close starts the close handshake with code (one websocket.ValidCloseCode accepts,
// or 0 for none) and a reason cut to 123 bytes. No message may be sent afterwards;
// the connection closes when the peer's close frame arrives or after the close
// timeout. It returns ErrClosing when the handshake has already started.
func (c *Conn) Close(code uint16, reason string) error {
	switch {
	case code != 0 && !websocket.ValidCloseCode(code):
		return ErrCloseCode
	case c.ec.Closed():
		return engine.ErrClosed
	case c.state != stateOpen:
		return ErrClosing
	}
	c.startClose(code, reason)
	return nil
}

// startClose sends the server's close frame and arms the close timeout.
func (c *Conn) startClose(code uint16, reason string) {
	c.setState(stateClosing)
	c.lp.scratch = websocket.AppendClose(c.lp.scratch[:0], code, reason, nil)
	_ = c.write(c.lp.scratch)
	c.ec.SetTimeout(c.lp.s.closeTimeout)
}

// failWith answers a protocol violation: a close frame with its code, then the
// socket closes once that has been sent (input is discarded meanwhile).
func (c *Conn) failWith(pe *websocket.ProtocolError) {
	c.lp.s.protoErrs.Add(1)
	c.setFail(pe)
	if c.state == stateOpen {
		c.lp.scratch = websocket.AppendClose(c.lp.scratch[:0], pe.Code, pe.Reason, nil)
		_ = c.write(c.lp.scratch)
	}
	c.finish()
}

// finish ends the connection after the close frames: no more frames are read, and the
// server closes the TCP connection first (RFC 6455 §7.1.1) once its output is sent.
func (c *Conn) finish() {
	c.setState(stateDone)
	c.ec.SetTimeout(c.lp.s.closeTimeout)
	c.closeAfterOutput()
}

// setState moves the connection to st (stateClosing or stateDone), telling a
// ClosingHandler when it leaves stateOpen.
func (c *Conn) setState(st uint8) {
	was := c.state
	c.state = st
	if was == stateOpen && c.lp.s.shut != nil {
		c.lp.s.shut.OnClosing(c)
	}
}

// writeFrame queues one frame: small ones built in the loop's scratch buffer and
// written once, large ones as a header and the payload.
func (c *Conn) writeFrame(fin bool, op websocket.Opcode, rsv1 bool, p []byte) error {
	lp := c.lp
	if len(p) <= 4<<10 {
		lp.scratch = websocket.AppendFrame(lp.scratch[:0], fin, op, rsv1, p, nil)
		return c.write(lp.scratch)
	}
	lp.scratch = websocket.AppendFrameHeader(lp.scratch[:0], fin, op, rsv1, len(p), nil)
	if err := c.write(lp.scratch); err != nil {
		return err
	}
	return c.write(p)
}

// compress returns p compressed for permessage-deflate in the loop's buffer, or false
// when it goes out uncompressed (see websocket.Compressor.Compress).
func (c *Conn) compress(p []byte) ([]byte, bool) {
	lp := c.lp
	dfl := c.deflater()
	takeover, bits := dfl.params.Send(websocket.RoleServer)
	comp := dfl.comp
	if takeover && comp == nil {
		comp = websocket.NewCompressor(lp.s.level)
		dfl.comp = comp
	} else if !takeover {
		comp = lp.pool.GetCompressor()
	}
	out, ok := comp.Compress(lp.cbuf[:0], p, takeover, bits)
	if !takeover {
		lp.pool.PutCompressor(comp)
	}
	lp.cbuf = out
	return out, ok
}

// touch records that bytes arrived.
func (c *Conn) touch() { c.lastRx = c.ec.Loop().Now().UnixNano() }

// armKeepAlive arms the connection timer for the next keep-alive or idle check,
// elapsed being the silence so far.
func (c *Conn) armKeepAlive(elapsed time.Duration) {
	s := c.lp.s
	next := time.Duration(-1)
	if s.ping > 0 {
		next = s.ping - elapsed
		if next <= 0 {
			next = s.ping
		}
	}
	if s.idle > 0 && (next < 0 || s.idle-elapsed < next) {
		next = s.idle - elapsed
	}
	if next > 0 {
		c.ec.SetTimeout(next)
	}
}

// timeout runs when the connection timer fires: keep-alive and idle checks while
// open, the close timeout afterwards.
func (c *Conn) timeout() {
	s := c.lp.s
	if c.state != stateOpen {
		s.closeTimeouts.Add(1)
		if c.fail == 0 {
			c.setFail(ErrCloseTimeout)
		}
		c.ec.Abort(ErrCloseTimeout)
		return
	}
	elapsed := c.ec.Loop().Now().Sub(time.Unix(0, c.lastRx))
	if s.idle > 0 && elapsed >= s.idle {
		s.idleTimeouts.Add(1)
		c.setFail(ErrIdle)
		c.startClose(websocket.CloseGoingAway, "idle timeout")
		return
	}
	if s.ping > 0 && elapsed >= s.ping {
		_ = c.writeFrame(true, websocket.OpPing, false, nil)
	}
	c.armKeepAlive(elapsed)
}

// released gives back the connection's buffers when it has closed.
func (c *Conn) released() {
	c.dropMessage()
	c.state = stateDone
	if c.dfi == dfiOwn {
		delete(c.lp.owned, c) // a held Compressor or Window goes with it
	}
	c.dfi = 0
}

// errInternal stands for a failure this package does not name.
var errInternal = &websocket.ProtocolError{Code: websocket.CloseInternalError, Reason: "internal error"}

// failures are the reasons a Conn records as one byte (Conn.fail indexes it; 0 is none).
var failures = []error{
	nil, ErrOverflow, ErrCloseTimeout, ErrIdle, io.ErrUnexpectedEOF, errInternal,
	websocket.ErrUnmaskedClient, websocket.ErrMaskedServer, websocket.ErrReservedBits,
	websocket.ErrReservedOpcode, websocket.ErrControlTooLong, websocket.ErrControlFragmented,
	websocket.ErrBadContinuation, websocket.ErrExpectContinue, websocket.ErrLengthMSB,
	websocket.ErrCloseLength, websocket.ErrCloseCode, websocket.ErrCloseReason,
	websocket.ErrInvalidUTF8, websocket.ErrBadDeflate, websocket.ErrMessageTooBig,
}

// setFail records err as the reason the connection ends; errors not in failures are
// recorded as errInternal.
func (c *Conn) setFail(err error) {
	for i, f := range failures {
		if i > 0 && f == err {
			c.fail = uint8(i)
			return
		}
	}
	c.fail = uint8(slices.Index(failures, error(errInternal)))
}

// CompressesStateless reports whether permessage-deflate was negotiated with the
// server keeping no context and using its full window: one message compressed once
// (websocket.Compressor.Compress without takeover) can then be sent to every such
// connection as the same frame, with RSV1 set. Fan-out (package pubsub) uses it.
func (c *Conn) CompressesStateless() bool {
	dfl := c.deflater()
	if dfl == nil {
		return false
	}
	takeover, bits := dfl.params.Send(websocket.RoleServer)
	return !takeover && (bits == 0 || bits == 15)
}
