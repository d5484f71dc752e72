package server

import (
	"net/netip"
	"time"
)

// SetUpstream records which upstream server answered this request and how long
// it took from the attempt's start (what nginx logs as $upstream_addr and
// $upstream_response_time). The proxy calls it; access logs read it. A later
// call replaces the values (the time grows from the response head to its end).
func (c *Ctx) SetUpstream(addr netip.AddrPort, d time.Duration) {
	c.upstream, c.upstreamTime = addr, d
}

// Upstream returns what SetUpstream recorded; addr is not valid when the
// request was not proxied.
func (c *Ctx) Upstream() (addr netip.AddrPort, d time.Duration) { return c.upstream, c.upstreamTime }

// tlsVersioner is the optional method of a TLS layer (package tlsterm) that
// reports the negotiated protocol version.
type tlsVersioner interface{ TLSVersion() uint16 }

// TLSVersion returns the TLS version of the request's connection
// (tls.VersionTLS12 or tls.VersionTLS13), or 0 on a plain connection.
func (c *Ctx) TLSVersion() uint16 {
	if v, ok := c.Layer().(tlsVersioner); ok {
		return v.TLSVersion()
	}
	return 0
}
