package tlsterm

// TLSVersion returns the negotiated TLS version (tls.VersionTLS12 or
// tls.VersionTLS13), for server.Ctx.TLSVersion and access logs. It runs on
// the connection's loop after the handshake.
func (c *tconn) TLSVersion() uint16 { return c.tc.ConnectionState().Version }
