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

// tlsState returns the TLS state for http.Request.TLS: nil on a plain connection.
// It runs on the loop.
func tlsState(c *server.Ctx) *tls.ConnectionState {
	s, ok := c.Layer().(connStater)
	if !ok {
		return nil
	}
	st := s.ConnectionState()
	return &st
}
