package engine

import (
	"sync/atomic"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// hoarder answers its first input with 8 MiB (above the high-water mark; the
// peer reads none of it), records whether reading is paused right after, and
// counts the input bytes that reach it later.
type hoarder struct {
	NopHandler
	own    bool // SetOutputPausesRead(false) at open
	paused atomic.Int32
	later  atomic.Int64
	wrote  bool // owned by the loop (one connection)
}

func (h *hoarder) OnOpen(c *Conn) {
	if h.own {
		c.SetOutputPausesRead(false)
	}
}

func (h *hoarder) OnData(c *Conn, in []byte) int {
	if !h.wrote {
		h.wrote = true
		c.Write(make([]byte, 8<<20))
		if c.ReadPaused() {
			h.paused.Store(1)
		} else {
			h.paused.Store(2)
		}
		return len(in)
	}
	h.later.Add(int64(len(in)))
	return len(in)
}

// TestSetOutputPausesRead: output above the high-water mark stops reading the
// same connection by default; with SetOutputPausesRead(false) the input that
// follows is still delivered while the output waits, as a relay needs.
func TestSetOutputPausesRead(t *testing.T) {
	for _, own := range []bool{false, true} {
		h := &hoarder{own: own}
		_, addr := startEngine(t, h, 1)
		c := testkit.Dial(t, addr)
		c.Write([]byte("go"))
		testkit.WaitFor(t, "the 8 MiB answer to be queued", func() bool { return h.paused.Load() != 0 })
		if got, want := h.paused.Load() == 1, !own; got != want {
			t.Fatalf("own pacing %v: reading paused %v after the output passed high water, want %v", own, got, want)
		}
		if !own {
			continue
		}
		c.Write([]byte("more input"))
		testkit.WaitFor(t, "input behind the unsent output", func() bool { return h.later.Load() == int64(len("more input")) })
	}
}
