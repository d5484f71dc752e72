package wsserver

import (
	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/server"
)

// A WebSocket accepted on a TLS connection (a `tls:` server) runs under the TLS layer:
// the layer decrypts and calls the Server's engine callbacks with the plaintext, and
// every frame the connection sends is written through the layer, which encrypts it. Such
// a Conn has bitLayered set and its Layer in its loop's layers map, so that a plain
// connection pays nothing for the possibility (TestConnSize).

var _ server.LayeredHandler = (*Server)(nil)

// OpenLayered implements server.LayeredHandler: Upgrade on a connection under a protocol
// layer (TLS) opens the WebSocket with l as its output.
func (s *Server) OpenLayered(ec *engine.Conn, l server.Layer) {
	lp := s.loop(ec.Loop())
	if c := lp.pending; c != nil && c.ec == ec {
		c.bits |= bitLayered
		if lp.layers == nil {
			lp.layers = make(map[*engine.Conn]server.Layer)
		}
		lp.layers[ec] = l
	}
	s.OnOpen(ec)
}

// layer returns the Layer of a layered connection.
func (c *Conn) layer() server.Layer { return c.lp.layers[c.ec] }

// write queues p for the peer: through the layer, or on the engine connection.
func (c *Conn) write(p []byte) error {
	if c.bits&bitLayered != 0 {
		return c.layer().Write(p)
	}
	return c.ec.Write(p)
}

// writeShared queues a shared frame: by reference on a plain connection; a layer
// encrypts per connection, so it gets a copy.
func (c *Conn) writeShared(s *engine.Shared) error {
	if c.bits&bitLayered != 0 {
		return c.layer().Write(s.Bytes())
	}
	return c.ec.WriteShared(s)
}

// buffered reports the output queued for the peer (for the high-water policy).
func (c *Conn) buffered() int {
	if c.bits&bitLayered != 0 {
		return c.layer().Buffered()
	}
	return c.ec.Buffered()
}

// wantDrain asks for one OnDrain once the queued output has fallen to the low-water mark.
func (c *Conn) wantDrain() {
	if c.bits&bitLayered != 0 {
		c.layer().WantDrain()
		return
	}
	c.ec.WantDrain()
}

// closeAfterOutput closes the connection once its output has been sent; under TLS
// after a close_notify alert.
func (c *Conn) closeAfterOutput() {
	if c.bits&bitLayered != 0 {
		if l := c.layer(); l != nil && !l.Closed() {
			l.CloseNotify()
		}
	}
	c.ec.CloseAfterFlush(true)
}

// dropLayer forgets a closed connection's Layer.
func (c *Conn) dropLayer() {
	if c.bits&bitLayered != 0 {
		delete(c.lp.layers, c.ec)
	}
}
