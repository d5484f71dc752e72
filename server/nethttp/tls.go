package nethttp

import (
	"crypto/tls"

	"github.com/gale-server/gale/server"
)

// connStater is the optional method of a TLS layer (package tlsterm) that reports
// the connection's TLS state.
type connStater interface {
	ConnectionState() tls.ConnectionState
}

// tlsState returns the TLS state for http.Request.TLS of an exchange, read from
// the layer its connection runs under (Ctx.Layer on HTTP/1.1, the stream's Layer
// on HTTP/2): nil on a plain connection. It runs on the loop.
func tlsState(ex server.Exchange) *tls.ConnectionState {
	lx, ok := ex.(interface{ Layer() server.Layer })
	if !ok {
		return nil
	}
	s, ok := lx.Layer().(connStater)
	if !ok {
		return nil
	}
	st := s.ConnectionState()
	return &st
}
