//go:build linux && !galenet && !race

package l4

import (
	"io"
	"testing"
)

// TestRelayAllocationFree: a small exchange through a warm relay (client →
// relay → echo upstream → relay → client) allocates nothing in the relay or the
// engine. AllocsPerRun counts the whole process, the test's client and echo
// upstream included.
func TestRelayAllocationFree(t *testing.T) {
	_, addr := startProxy(t, Options{Upstreams: group(serve(t, echo))})
	c := dial(t, addr)
	msg := make([]byte, 512)
	buf := make([]byte, len(msg))
	roundTrip := func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		roundTrip()
	}
	if n := testing.AllocsPerRun(1000, roundTrip); n > 0.05 {
		t.Fatalf("%.2f allocations per round trip, want 0", n)
	}
}
