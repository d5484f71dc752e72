package proxy

import (
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/l4"
	"github.com/gale-server/gale/server"
)

// tunnelEnd is one side of an upgraded connection pair: bytes read from conn are
// written to peer. Both ends live on the same loop, which owns them. A client
// connection under TLS has its layer: its input arrives decrypted through the
// handler's callbacks and its output goes through the layer.
type tunnelEnd struct {
	conn  *engine.Conn
	layer server.Layer // nil on a plain connection
	peer  *tunnelEnd
	last  time.Time     // when this side last read bytes (the loop's cached clock)
	idle  time.Duration // the tunnel's idle timeout, on the client side (its timer's owner)
}

func (e *tunnelEnd) write(p []byte) {
	if e.layer != nil {
		e.layer.Write(p)
		return
	}
	e.conn.Write(p)
}

func (e *tunnelEnd) buffered() int {
	if e.layer != nil {
		return e.layer.Buffered()
	}
	return e.conn.Buffered()
}

func (e *tunnelEnd) wantDrain() {
	if e.layer != nil {
		e.layer.WantDrain()
		return
	}
	e.conn.WantDrain()
}

func (e *tunnelEnd) resumeRead() {
	if e.layer != nil {
		e.layer.ResumeRead() // also passes on input the layer held
		return
	}
	e.conn.ResumeRead()
}

// closeAfterFlush closes the side once its queued output is sent; under TLS a
// close_notify goes first.
func (e *tunnelEnd) closeAfterFlush() {
	if e.layer != nil && !e.conn.Closed() {
		e.layer.CloseNotify()
	}
	e.conn.CloseAfterFlush(false)
}

// tunnelHandler relays a WebSocket (or any upgraded) connection byte for byte with a
// plain copy through the loop, pausing a side whose peer holds more than highWater of
// output. It is a server.LayeredHandler, so a client connection under TLS can be
// tunnelled too (its bytes are decrypted and encrypted by the layer).
type tunnelHandler struct{ engine.NopHandler }

var tunnelH = &tunnelHandler{}

var _ server.LayeredHandler = (*tunnelHandler)(nil)

// OpenLayered records the client's layer; startTunnel joins the pair right after.
func (*tunnelHandler) OpenLayered(ec *engine.Conn, l server.Layer) {
	ec.SetContext(&tunnelEnd{conn: ec, layer: l})
}

func (*tunnelHandler) OnData(ec *engine.Conn, in []byte) int {
	te, _ := ec.Context().(*tunnelEnd)
	if te == nil || te.peer == nil {
		return 0 // the pair is joined right after the switch, before any dispatch
	}
	te.last = ec.Loop().Now()
	out := te.peer
	if out.conn.Closed() {
		ec.Close(nil)
		return len(in)
	}
	out.write(in)
	if out.buffered() > highWater {
		ec.PauseRead()
		out.wantDrain()
	}
	return len(in)
}

func (*tunnelHandler) OnDrain(ec *engine.Conn) {
	if te, _ := ec.Context().(*tunnelEnd); te != nil && te.peer != nil {
		te.peer.resumeRead()
	}
}

func (*tunnelHandler) OnEOF(ec *engine.Conn) {
	te, _ := ec.Context().(*tunnelEnd)
	if te != nil && te.peer != nil {
		te.peer.closeAfterFlush()
	}
	if te != nil {
		te.closeAfterFlush()
		return
	}
	ec.CloseAfterFlush(false)
}

// OnTimeout closes both sides once neither has read a byte for the idle timeout
// (the client side's timer; it is re-armed for the time left otherwise), as the
// relay of plain tunnels does: a peer that vanished without a FIN or a reset
// would otherwise hold the pair forever.
func (*tunnelHandler) OnTimeout(ec *engine.Conn) {
	te, _ := ec.Context().(*tunnelEnd)
	if te == nil || te.peer == nil || te.idle <= 0 {
		return
	}
	last := te.last
	if te.peer.last.After(last) {
		last = te.peer.last
	}
	if left := te.idle - ec.Loop().Now().Sub(last); left > 0 {
		ec.SetTimeout(left)
		return
	}
	te.peer.closeAfterFlush()
	te.closeAfterFlush()
}

func (*tunnelHandler) OnShutdown(ec *engine.Conn) {
	if te, _ := ec.Context().(*tunnelEnd); te != nil {
		te.closeAfterFlush()
		return
	}
	ec.CloseAfterFlush(false)
}

func (*tunnelHandler) OnClose(ec *engine.Conn, _ error) {
	if te, _ := ec.Context().(*tunnelEnd); te != nil && te.peer != nil && !te.peer.conn.Closed() {
		te.peer.closeAfterFlush()
	}
}

// tunnelSpliceAfter is how many bytes one direction of a plain tunnel copies
// before it moves to splice(2), as the l4 relay's default splice_after.
const tunnelSpliceAfter = 256 << 10

// tunnels returns the relay of plain tunnels for eng, made on first use.
func (h *Handler) tunnels(eng *engine.Engine) *l4.Tunnels {
	h.tunOnce.Do(func() { h.tun = l4.NewTunnels(eng, h.tunnelIdle(), tunnelSpliceAfter, h.u.opts.Logger) })
	return h.tun
}

// tunnelIdle is how long a tunnel may move no byte before it is closed.
func (h *Handler) tunnelIdle() time.Duration {
	if h.r.TunnelIdleTimeout > 0 {
		return h.r.TunnelIdleTimeout
	}
	return time.Hour
}

// TunnelStats returns the counters of the plain tunnels relayed so far (zero
// before the first).
func (h *Handler) TunnelStats() l4.Stats {
	h.tunOnce.Do(func() {}) // orders the read after a concurrent first use
	if h.tun == nil {
		return l4.Stats{}
	}
	return h.tun.Stats()
}

// startTunnel answers the client's upgrade with the upstream's 101 and joins the two
// connections. Bytes the upstream sent after its 101 stay in the engine and reach the
// tunnel first; so do bytes the client sent after its request.
func (x *exchange) startTunnel(uc *upConn) {
	r := &uc.resp
	c := x.hc // tunnels are HTTP/1.1 only (serve sets x.tunnel only with hc)
	hdr := c.Header()
	hdr.AppendRaw(x.h.responseFields(x.ls.scratch()[:0], r))
	if v, ok := r.Header("Upgrade"); ok {
		hdr.AppendRaw(http1.AppendHeaderBytes(x.ls.scratch()[:0], []byte("Upgrade"), v))
	}
	hdr.AppendRaw([]byte("Connection: Upgrade\r\n"))
	client := c.Conn()
	x.respStarted = true
	// The origin accepted the upgrade: a success for the health group (as
	// cancelled, it never closed a half-open breaker). What the tunnel does
	// later is the relay's, not this attempt's.
	x.endAttempt(r.Status, health.Succeeded)
	x.finish()
	uc.x = nil
	up, tlsUp := uc.out.(server.Handover) // an https upstream: its tlsterm layer
	if c.Layer() == nil && !tlsUp {
		// Both sides are plain sockets: the l4 relay, which splices bulk flows.
		t := x.h.tunnels(client.Loop().Engine())
		if err := c.Upgrade(t.Handler()); err != nil {
			uc.ec.Close(err)
			client.Close(err)
			return
		}
		uc.ec.CancelTimeout()
		t.Join(client, uc.ec)
		return
	}
	if err := c.Upgrade(tunnelH); err != nil {
		uc.ec.Close(err)
		client.Close(err)
		return
	}
	down, _ := client.Context().(*tunnelEnd) // set by OpenLayered under TLS
	if down == nil {
		down = &tunnelEnd{conn: client}
	}
	uc.ec.CancelTimeout()
	var upEnd *tunnelEnd
	if tlsUp {
		// The upstream's layer serves the tunnel from now on: its decrypted input
		// (the bytes behind the 101 first, once this OnData returns) reaches
		// tunnelH, and writes are encrypted through it.
		up.Handover(tunnelH)
		upEnd, _ = uc.ec.Context().(*tunnelEnd)
	} else {
		upEnd = &tunnelEnd{conn: uc.ec}
		uc.ec.SetContext(upEnd)
		uc.ec.SetHandler(tunnelH)
	}
	down.peer, upEnd.peer = upEnd, down
	now := client.Loop().Now()
	down.last, upEnd.last, down.idle = now, now, x.h.tunnelIdle()
	client.SetTimeout(down.idle)
	// Each side pauses its peer's reading when its own output is above high
	// water (OnData); the engine must not stop reading a side for its own
	// output too, or an origin that stops reading while it writes (an echo)
	// would stop both directions at once.
	client.SetOutputPausesRead(false)
	uc.ec.SetOutputPausesRead(false)
	client.SetContext(down)
	uc.out.ResumeRead()
}
