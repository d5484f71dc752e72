package server

import "github.com/gale-server/gale/engine"

// OpenLayered starts an HTTP/2 connection whose bytes pass through the layer l (h2
// negotiated with TLS ALPN): the layer calls the HTTP2's engine callbacks with
// decrypted input, and every frame is written through l, never to ec. The
// connection ends with the layer's CloseNotify before the engine connection closes.
// It runs on ec's loop, in place of OnOpen.
func (h *HTTP2) OpenLayered(ec *engine.Conn, l Layer) { h.open(ec, l) }

// LinkHTTP2 makes h serve the listener's handler (Listener.SetHandler swaps it for
// both protocols) unless h was made with a handler of its own. It is for an HTTP2
// the listener reaches through a layer (h2 after a TLS handshake) rather than
// through its Dispatch.H2, which ListenDispatch links itself. Call it before the
// listener's first connection can reach h.
func (l *Listener) LinkHTTP2(h *HTTP2) { h.linkHandler(&l.ch.handler) }
