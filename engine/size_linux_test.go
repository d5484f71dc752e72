//go:build linux && !galenet

package engine

import (
	"testing"
	"unsafe"
)

// peerKept reports whether c's peer address was kept at accept or dial (no
// getpeername per RemoteAddr).
func peerKept(c *Conn) bool { return c.hasPeer4() || c.flags&fPeer6 != 0 }

// TestConnSize keeps the idle connection small: the engine's per-connection struct
// is part of the memory every idle keep-alive connection costs.
func TestConnSize(t *testing.T) {
	const limit = 80
	if n := unsafe.Sizeof(Conn{}); n > limit {
		t.Fatalf("Conn is %d bytes, more than %d", n, limit)
	} else {
		t.Logf("Conn is %d bytes", n)
	}
}
