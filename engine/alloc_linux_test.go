//go:build linux && !galenet && !race

package engine

import (
	"io"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// TestEchoAllocationFree: a round trip through the epoll engine (read, OnData, Write,
// writev) allocates nothing once the connection is warm. AllocsPerRun counts the
// whole process, so the loop's work is included.
func TestEchoAllocationFree(t *testing.T) {
	h := &echo{}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	msg := []byte("ping\n")
	buf := make([]byte, len(msg))
	roundTrip := func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		roundTrip()
	}
	if n := testing.AllocsPerRun(1000, roundTrip); n > 0.05 {
		t.Fatalf("%.2f allocations per round trip, want 0", n)
	}
}
