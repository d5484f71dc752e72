// Package listenaddr resolves listen addresses the one way gale binds them. Both
// engines bind what Resolve returns and `gale check` validates with Resolve, so an
// address check accepts is one serve can bind, and two spellings of one address
// ("localhost:80", "127.0.0.1:80") are recognized as one. It is portable and does no
// I/O: host names are not looked up.
package listenaddr

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Resolve turns "host:port" into the address that is bound. The host is an IP literal
// (IPv4, or IPv6 in brackets; an IPv4-mapped IPv6 address counts as its IPv4 address),
// "localhost" in any case (127.0.0.1), or empty or "0.0.0.0" for every IPv4 address; "[::]" is
// every IPv6 address and, since gale does not set IPV6_V6ONLY, every IPv4 address too.
// The port is a decimal number from 0 to 65535. Any other host (a DNS name included) is
// an error, because gale listens on literal addresses only.
func Resolve(addr string) (netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("invalid listen address %q: expected host:port, like 127.0.0.1:8080, [::1]:8080 or :8080", addr)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("invalid port %q in listen address %q: expected a number from 0 to 65535", portStr, addr)
	}
	var ip netip.Addr
	switch {
	case host == "" || host == "0.0.0.0":
		ip = netip.IPv4Unspecified()
	case strings.EqualFold(host, "localhost"):
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	default:
		if ip, err = netip.ParseAddr(host); err != nil || ip.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("invalid host %q in listen address %q: expected an IP address, localhost or nothing (gale listens on literal addresses, host names are not resolved)", host, addr)
		}
		ip = ip.Unmap()
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// Overlap reports whether sockets bound to a and b would share connections: the same
// port (other than 0, which picks a fresh one) and the same address, or a wildcard
// that covers the other (0.0.0.0 covers every IPv4 address, :: covers everything).
// With SO_REUSEPORT such binds succeed and the kernel splits connections between them.
func Overlap(a, b netip.AddrPort) bool {
	if a.Port() == 0 || a.Port() != b.Port() {
		return false
	}
	x, y := a.Addr(), b.Addr()
	switch {
	case x == y:
		return true
	case x == netip.IPv6Unspecified() || y == netip.IPv6Unspecified():
		return true
	case x == netip.IPv4Unspecified():
		return y.Is4()
	case y == netip.IPv4Unspecified():
		return x.Is4()
	}
	return false
}
