package sys

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
)

// zoneNames caches interface names by index for Addr6: a link-local peer is rare, but
// each lookup is a netlink dump, so one is made per interface index, not per
// connection. An interface renamed later keeps its old name here until restart.
var zoneNames sync.Map // uint32 -> string

// Addr6 is the address of an IPv6 socket address: IPv4-mapped addresses unmapped, and
// a non-zero scope (a link-local peer's interface) kept as the zone, by interface name
// as Go's net package reports it, or as the decimal index when no interface has it.
func Addr6(a [16]byte, scope uint32) netip.Addr {
	ip := netip.AddrFrom16(a)
	if ip.Is4In6() {
		return ip.Unmap()
	}
	if scope == 0 {
		return ip
	}
	if name, ok := zoneNames.Load(scope); ok {
		return ip.WithZone(name.(string))
	}
	name := strconv.FormatUint(uint64(scope), 10)
	if ifi, err := net.InterfaceByIndex(int(scope)); err == nil && ifi.Name != "" {
		name = ifi.Name
	}
	zoneNames.Store(scope, name)
	return ip.WithZone(name)
}

// ZoneIndex is the scope id for an IPv6 zone: an interface name or a decimal index.
// An empty or unknown zone gives 0 (no scope).
func ZoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}
