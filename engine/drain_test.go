package engine

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// filler answers "fill" with total bytes, written from OnDrain only while Buffered()
// is below LowWater, so that the queue sits at exactly LowWater whenever the peer
// stops reading. It answers "ping" with "pong".
type filler struct {
	low   int
	total int
	sent  atomic.Int64
	drain atomic.Int64 // OnDrain calls
	left  int          // owned by the connection's loop (one filling connection)
}

func (h *filler) OnOpen(c *Conn) {}
func (h *filler) OnData(c *Conn, in []byte) int {
	switch {
	case bytes.HasPrefix(in, []byte("ping")):
		c.Write([]byte("pong"))
		return 4
	case bytes.HasPrefix(in, []byte("fill")):
		h.left = h.total
		h.fill(c)
		return 4
	}
	return len(in)
}

// fill tops the queue up to exactly LowWater and asks to be called again.
func (h *filler) fill(c *Conn) {
	if n := min(h.low-c.Buffered(), h.left); n > 0 {
		c.Write(make([]byte, n))
		h.left -= n
		h.sent.Add(int64(n))
	}
	if h.left > 0 {
		c.WantDrain()
	}
}

func (h *filler) OnEOF(c *Conn)        { c.CloseAfterFlush(true) }
func (h *filler) OnDrain(c *Conn)      { h.drain.Add(1); h.fill(c) }
func (h *filler) OnTimeout(c *Conn)    { c.Close(nil) }
func (h *filler) OnShutdown(c *Conn)   { c.Close(nil) }
func (h *filler) OnClose(*Conn, error) {}

// TestDrainAtExactlyLowWater: a handler that writes while Buffered() < LowWater leaves
// the queue at exactly LowWater when its peer stops reading. OnDrain must then wait
// for the queue to fall; calling it at "≤ LowWater" made the loop call it back forever
// (the handler had no room, asked again, the connection was flushed again), so the loop
// never polled again: other connections on it starved and the writes of the portable
// engine's writer goroutine were never taken back. The loop must keep serving another
// connection while the first peer is stalled, and the stalled peer, once it reads, must
// get every byte.
func TestDrainAtExactlyLowWater(t *testing.T) {
	const low = 16 << 10
	h := &filler{low: low, total: 32 << 20}
	_, addr := startEngineConfig(t, h, Config{Workers: 1, HighWater: 4 * low, LowWater: low}, "127.0.0.1:0")
	slow := testkit.Dial(t, addr)
	if _, err := slow.Write([]byte("fill")); err != nil {
		t.Fatal(err)
	}
	// Wait until the socket buffers are full and the queue is stuck at LowWater: the
	// amount sent stops growing.
	var last int64 = -1
	testkit.WaitFor(t, "the stalled peer's socket to fill", func() bool {
		n := h.sent.Load()
		stuck := n == last && n > 0
		last = n
		time.Sleep(50 * time.Millisecond)
		return stuck
	})
	calls := h.drain.Load()
	other := testkit.Dial(t, addr)
	other.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := other.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(other, got); err != nil || string(got) != "pong" {
		t.Fatalf("second connection on the loop: %q, %v (the loop is spinning in OnDrain)", got, err)
	}
	if d := h.drain.Load() - calls; d > 1000 {
		t.Fatalf("OnDrain called %d times while the peer read nothing", d)
	}
	slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.CopyN(io.Discard, slow, int64(h.total))
	if err != nil || n != int64(h.total) {
		t.Fatalf("stalled peer read %d of %d bytes: %v", n, h.total, err)
	}
}
