package proxy

import (
	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
)

// tunnelEnd is one side of an upgraded connection pair: bytes read from conn are
// written to peer.conn. Both ends live on the same loop, which owns them.
type tunnelEnd struct {
	conn *engine.Conn
	peer *tunnelEnd
}

// tunnelHandler relays a WebSocket (or any upgraded) connection byte for byte with a
// plain copy through the loop, pausing a side whose peer holds more than highWater of
// output. (splice(2) between the sockets is a later optimisation.)
type tunnelHandler struct{ engine.NopHandler }

var tunnelH engine.Handler = &tunnelHandler{}

func (*tunnelHandler) OnData(ec *engine.Conn, in []byte) int {
	te, _ := ec.Context().(*tunnelEnd)
	if te == nil {
		return 0 // the context is set right after the switch, before any dispatch
	}
	out := te.peer.conn
	if out.Closed() {
		ec.Close(nil)
		return len(in)
	}
	out.Write(in)
	if out.Buffered() > highWater {
		ec.PauseRead()
		out.WantDrain()
	}
	return len(in)
}

func (*tunnelHandler) OnDrain(ec *engine.Conn) {
	if te, _ := ec.Context().(*tunnelEnd); te != nil {
		te.peer.conn.ResumeRead()
	}
}

func (*tunnelHandler) OnEOF(ec *engine.Conn) {
	if te, _ := ec.Context().(*tunnelEnd); te != nil {
		te.peer.conn.CloseAfterFlush(false)
	}
	ec.CloseAfterFlush(false)
}

func (*tunnelHandler) OnShutdown(ec *engine.Conn) { ec.CloseAfterFlush(false) }

func (*tunnelHandler) OnClose(ec *engine.Conn, _ error) {
	if te, _ := ec.Context().(*tunnelEnd); te != nil && !te.peer.conn.Closed() {
		te.peer.conn.CloseAfterFlush(false)
	}
}

// startTunnel answers the client's upgrade with the upstream's 101 and joins the two
// connections. Bytes the upstream sent after its 101 stay in the engine and reach the
// tunnel first; so do bytes the client sent after its request.
func (x *exchange) startTunnel(uc *upConn) {
	r := &uc.resp
	c := x.c
	hdr := c.Header()
	hdr.AppendRaw(x.h.responseFields(x.ls.scratch()[:0], r))
	if v, ok := r.Header("Upgrade"); ok {
		hdr.AppendRaw(http1.AppendHeaderBytes(x.ls.scratch()[:0], []byte("Upgrade"), v))
	}
	hdr.AppendRaw([]byte("Connection: Upgrade\r\n"))
	client := c.Conn()
	x.respStarted = true
	x.finish()
	uc.x = nil
	if err := c.Upgrade(tunnelH); err != nil {
		uc.ec.Close(err)
		client.Close(err)
		return
	}
	up := &tunnelEnd{conn: uc.ec}
	down := &tunnelEnd{conn: client, peer: up}
	up.peer = down
	client.SetContext(down)
	uc.ec.CancelTimeout()
	uc.ec.SetContext(up)
	uc.ec.SetHandler(tunnelH)
	uc.ec.ResumeRead()
}
