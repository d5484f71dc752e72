package engine

import (
	"io"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestDropAfterFlushReadsNoMore: DropAfterFlush delivers what was queued, then closes
// at once instead of lingering, so a peer that keeps sending finds the connection gone
// (its writes fail) long before the linger period would have ended, and the handler
// sees none of what it sent after the goodbye.
func TestDropAfterFlushReadsNoMore(t *testing.T) {
	var seen int64
	h := &script{data: func(c *Conn, in []byte) int {
		seen += int64(len(in))
		c.Write([]byte("bye"))
		c.DropAfterFlush()
		return len(in)
	}}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 3)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "bye" {
		t.Fatalf("read %q, %v; want bye", got, err)
	}
	// The linger of CloseAfterFlush(true) would read and discard this for lingerTimeout.
	junk := make([]byte, 64<<10)
	deadline := time.Now().Add(lingerTimeout / 2)
	c.SetWriteDeadline(deadline)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = c.Write(junk)
	}
	if err == nil || time.Now().After(deadline) {
		t.Fatalf("writes after the goodbye still accepted after %v (err %v): the connection lingered", lingerTimeout/2, err)
	}
	testkit.WaitFor(t, "OnClose", func() bool { return h.closes.Load() == 1 })
	if e := h.closeErr(); e != nil {
		t.Fatalf("OnClose reason %v, want nil", e)
	}
	if seen != 1 {
		t.Fatalf("handler saw %d bytes, want only the 1 before the goodbye", seen)
	}
}
