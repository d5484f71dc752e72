package engine

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// TestIPv6Peer: an IPv6 peer's address is reported like an IPv4 one, from the
// accepted connection itself.
func TestIPv6Peer(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	var peer atomic.Pointer[netip.AddrPort]
	var kept atomic.Bool
	h := &script{data: func(c *Conn, in []byte) int {
		ap := c.RemoteAddr()
		peer.Store(&ap)
		kept.Store(peerKept(c))
		c.Write(in)
		return len(in)
	}}
	_, addr := startEngineOn(t, h, 1, "[::1]:0")
	c := testkit.Dial(t, addr)
	c.Write([]byte("x"))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	want := c.LocalAddr().(*net.TCPAddr).AddrPort()
	if got := *peer.Load(); got != want || !got.Addr().Is6() {
		t.Fatalf("RemoteAddr = %v, want %v", got, want)
	}
	if !kept.Load() {
		t.Fatal("the IPv6 peer was not kept from accept")
	}
}
