package sys

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAddr6: IPv4-mapped addresses are unmapped, a zero scope gives no zone, and a
// scope is named like Go's net package names it (the loopback interface here), or
// kept as its number when no interface has that index; ZoneIndex inverts both forms.
func TestAddr6(t *testing.T) {
	lo, err := net.InterfaceByIndex(1)
	if err != nil {
		t.Skipf("no interface 1: %v", err)
	}
	ll := netip.MustParseAddr("fe80::1").As16()
	for _, tc := range []struct {
		a     [16]byte
		scope uint32
		want  string
	}{
		{netip.MustParseAddr("::ffff:10.1.2.3").As16(), 0, "10.1.2.3"},
		{netip.MustParseAddr("2001:db8::1").As16(), 0, "2001:db8::1"},
		{ll, 1, "fe80::1%" + lo.Name},
		{ll, 999999, "fe80::1%999999"},
	} {
		got := Addr6(tc.a, tc.scope)
		if got.String() != tc.want {
			t.Errorf("Addr6(%v, %d) = %v, want %s", netip.AddrFrom16(tc.a), tc.scope, got, tc.want)
		}
		if tc.scope != 0 {
			if back := ZoneIndex(got.Zone()); back != tc.scope {
				t.Errorf("ZoneIndex(%q) = %d, want %d", got.Zone(), back, tc.scope)
			}
		}
	}
	if ZoneIndex("") != 0 || ZoneIndex("no-such-interface0") != 0 {
		t.Error("an empty or unknown zone must give scope 0")
	}
	ap, err := sockaddrAddrPort(&unix.SockaddrInet6{Addr: ll, Port: 443, ZoneId: 1}, "getpeername")
	if err != nil || ap.String() != "[fe80::1%"+lo.Name+"]:443" {
		t.Errorf("sockaddrAddrPort kept %v (%v), want the zone", ap, err)
	}
}
