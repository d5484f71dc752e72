package server

import "github.com/gale-server/gale/engine"

// LayeredHandler is an engine.Handler that can serve a connection under a Layer:
// it writes through the Layer, never to the engine connection, and gets the
// layer's (decrypted) input through its engine callbacks. *HTTP2 is one; a protocol
// that wants Ctx.Upgrade or Ctx.Hijack to work over TLS (WebSocket, a tunnel)
// implements it beside OnOpen.
type LayeredHandler interface {
	engine.Handler
	// OpenLayered runs in place of OnOpen, on the connection's loop; l is where
	// every byte of output goes.
	OpenLayered(ec *engine.Conn, l Layer)
}

// Handover is a Layer that can pass its stream to another protocol handler: from
// then on the layer calls h's engine callbacks instead of HTTP/1's. The TLS layer
// implements it; Upgrade and Hijack under a layer that does not fail with
// ErrLayered.
type Handover interface {
	Layer
	// Handover makes h the upper handler and calls h.OpenLayered(ec, layer). Input
	// the layer holds reaches h.OnData from the first byte on.
	Handover(h LayeredHandler)
}

// Layer returns the layer the connection's bytes pass through (TLS), or nil on a
// plain connection. A handler may look for optional methods on it (the TLS layer
// has ConnectionState() tls.ConnectionState).
func (c *Ctx) Layer() Layer { return c.cn.lower() }

// canHandOver reports whether the connection can go to h: always on a plain
// connection, and under a layer when the layer and h both support it.
func (cn *conn) canHandOver(h engine.Handler) bool {
	l := cn.lower()
	if l == nil {
		return true
	}
	_, lh := h.(LayeredHandler)
	_, ho := l.(Handover)
	return lh && ho
}

// handOver gives ec to h, through the layer l when there is one (canHandOver said
// yes), and resumes reading so that the input after the request reaches h.
func handOver(ec *engine.Conn, l Layer, h engine.Handler) {
	if l == nil {
		ec.SetHandler(h)
		h.OnOpen(ec)
		ec.ResumeRead()
		return
	}
	l.(Handover).Handover(h.(LayeredHandler))
	l.ResumeRead()
}
