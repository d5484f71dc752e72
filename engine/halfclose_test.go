package engine

import (
	"bufio"
	"io"
	"sync/atomic"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// halfCloser answers its first bytes with "bye", half-closes once that is
// flushed, and keeps counting what the peer sends after.
type halfCloser struct {
	NopHandler
	after    atomic.Int64
	said     atomic.Bool
	closeErr atomic.Value
}

func (h *halfCloser) OnData(c *Conn, in []byte) int {
	if h.said.Swap(true) {
		h.after.Add(int64(len(in)))
		return len(in)
	}
	c.Write([]byte("bye"))
	if err := c.CloseWrite(); err != ErrOutputQueued {
		h.closeErr.Store(err) // must refuse while "bye" is queued
	}
	c.WantFlushed()
	return len(in)
}

func (h *halfCloser) OnFlushed(c *Conn) {
	if err := c.CloseWrite(); err != nil {
		c.Close(err)
	}
}

// TestCloseWrite checks that CloseWrite refuses while output is queued, and after
// the flush sends a FIN while the connection keeps reading.
func TestCloseWrite(t *testing.T) {
	h := &halfCloser{}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	c.Write([]byte("hi"))
	got, err := io.ReadAll(bufio.NewReader(c))
	if err != nil || string(got) != "bye" {
		t.Fatalf("read %q, %v; want bye then EOF", got, err)
	}
	if e := h.closeErr.Load(); e != nil {
		t.Fatalf("CloseWrite with output queued: %v, want ErrOutputQueued", e)
	}
	c.Write([]byte("still open"))
	testkit.WaitFor(t, "bytes after the half-close", func() bool { return h.after.Load() == 10 })
}

func (h *halfCloser) OnShutdown(c *Conn) { c.Close(nil) }
