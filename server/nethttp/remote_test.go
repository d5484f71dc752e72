package nethttp

import (
	"net/netip"
	"testing"
)

// TestRemoteStringIsAddrPortString checks the cache against AddrPort.String for
// addresses that collide in it, repeat, and come in every family.
func TestRemoteStringIsAddrPortString(t *testing.T) {
	var aps []netip.AddrPort
	for _, s := range []string{"127.0.0.1", "10.1.2.3", "::1", "fe80::1%eth0", "::ffff:127.0.0.1", "2001:db8::7"} {
		a := netip.MustParseAddr(s)
		for port := uint16(0); port < 3000; port += 7 {
			aps = append(aps, netip.AddrPortFrom(a, port))
		}
	}
	for round := 0; round < 3; round++ {
		for _, ap := range aps {
			if got, want := remoteString(ap), ap.String(); got != want {
				t.Fatalf("remoteString(%v) = %q, want %q", ap, got, want)
			}
		}
	}
	ap := netip.MustParseAddrPort("127.0.0.1:40000")
	remoteString(ap)
	if n := testing.AllocsPerRun(100, func() { remoteString(ap) }); n != 0 {
		t.Errorf("a cached address costs %v allocations, want 0", n)
	}
}
