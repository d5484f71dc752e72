//go:build linux && !galenet

package engine

import (
	"io"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// TestHandlerSlotsReused re-parents one connection to 70,000 fresh handler values,
// more than a 16-bit index can number at once: slots are reused, the table stays
// small and the last handler gets the bytes.
func TestHandlerSlotsReused(t *testing.T) {
	first := &script{data: func(c *Conn, in []byte) int { return len(in) }}
	e, addr := startEngine(t, first, 1)
	l := e.Loops()[0]
	c := testkit.Dial(t, addr)
	var last *script
	var size int
	c.Write([]byte("x"))
	testkit.WaitFor(t, "open", func() bool {
		ok := false
		onLoop(t, l, func() { ok = l.nconns == 1 })
		return ok
	})

	onLoop(t, l, func() {
		l.eachConn(func(ec *Conn) {
			for i := 0; i < 70000; i++ {
				last = &script{data: func(ec *Conn, in []byte) int {
					ec.Write(in)
					return len(in)
				}}
				ec.SetHandler(last)
			}
		})
		size = len(l.handlers.list)
	})
	if size > 3 {
		t.Fatalf("handler table holds %d slots after re-parenting", size)
	}
	c.Write([]byte("ping"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("got %q, %v", got, err)
	}
	c.Close()
	testkit.WaitFor(t, "close", func() bool { return last.closes.Load() == 1 })
}
