package server

import (
	"errors"

	"github.com/gale-server/gale/engine"
)

// Layer is a protocol layer between an engine connection and HTTP/1 (a TLS record
// layer), as HTTP/1 sees it. The layer owns the engine connection's handler: it
// calls the HTTP/1 handler's engine.Handler methods with the same *engine.Conn and
// with its own (decrypted) input, keeping what OnData leaves unconsumed as the
// engine would. HTTP/1 keeps using the engine connection for its context, timer,
// pause and close, and writes every response byte through the Layer's Stream side
// (by way of a FilePump, since a layer cannot sendfile). Every method runs on the
// connection's loop.
type Layer interface {
	Stream
	// Unread reports how many bytes of input the layer holds for the upper
	// protocol (left unconsumed by its OnData).
	Unread() int
	// ResumeRead resumes reading like engine.Conn.ResumeRead; input the layer holds
	// is passed to the upper handler's OnData again at the end of this loop
	// iteration (or sooner, with the next bytes), before any new read.
	ResumeRead()
	// CloseNotify ends the layer's output (a TLS close_notify alert) ahead of a
	// close after the queued output; nothing can be written afterwards.
	CloseNotify()
}

// ErrLayered is the request-level error of Ctx.Upgrade and Ctx.Hijack on a
// connection whose bytes pass through a Layer (TLS) when the new protocol handler
// is not a LayeredHandler (it would write to the socket unencrypted) or the layer
// cannot hand over: the connection stays with HTTP/1.
var ErrLayered = errors.New("server: cannot hand a connection under a protocol layer (TLS) to another handler")

// HTTP1Over returns the listener's HTTP/1.1 handler for connections whose bytes
// pass through a Layer: the layer calls its methods, and layer(ec) (called once, in
// OnOpen) returns the Layer HTTP/1 writes through. The handler serves the
// listener's handler (Listener.SetHandler swaps both).
func (l *Listener) HTTP1Over(layer func(ec *engine.Conn) Layer) engine.Handler {
	return &connHandler{srv: l.ch.srv, parent: l.ch, noSendfile: true, layer: layer}
}

// box returns the handler box requests read at their start: the parent's for a
// layered handler, so that a reload swaps plain and layered connections together.
func (h *connHandler) box() *handlerBox {
	if h.parent != nil {
		return h.parent.handler.Load()
	}
	return h.handler.Load()
}

// lower returns cn's Layer, nil for a plain connection.
func (cn *conn) lower() Layer {
	if !cn.pumped {
		return nil
	}
	l, _ := cn.ls.pumps[cn].s.(Layer)
	return l
}

// resumeRead resumes reading ec, through the layer when there is one.
func (cn *conn) resumeRead(ec *engine.Conn) {
	if l := cn.lower(); l != nil {
		l.ResumeRead()
		return
	}
	ec.ResumeRead()
}

// unread reports the input held for HTTP/1: by the layer, or by the engine.
func (cn *conn) unread(ec *engine.Conn) int {
	if l := cn.lower(); l != nil {
		return l.Unread()
	}
	return ec.Unread()
}

// writeRaw writes bytes outside any Ctx (error responses): through the pump when
// the connection has one (a layer), else to the engine connection.
func (cn *conn) writeRaw(ec *engine.Conn, b []byte) {
	if p := cn.pump(); p != nil {
		p.Write(b)
		return
	}
	ec.Write(b)
}
