//go:build linux && !galenet

package engine

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// pauseAtFirst pauses reading after the first bytes it gets; the test resumes it.
type pauseAtFirst struct {
	NopHandler
	mu   sync.Mutex
	conn *Conn
	got  bytes.Buffer
	eof  atomic.Bool
}

func (h *pauseAtFirst) OnData(c *Conn, in []byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn == nil {
		h.conn = c
		c.PauseRead()
	}
	h.got.Write(in)
	return len(in)
}

func (h *pauseAtFirst) OnEOF(*Conn) { h.eof.Store(true) }

func (h *pauseAtFirst) received() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got.String()
}

// TestBytesBeforeFINWhilePaused checks that bytes a peer sent before its FIN, while
// the connection was paused (OnEOF is reported early, at the FIN), are still
// delivered once reading resumes. The engine used to skip the read after OnEOF.
func TestBytesBeforeFINWhilePaused(t *testing.T) {
	h := &pauseAtFirst{}
	e, addr := startEngine(t, h, 1)
	if e.Backend() == BackendIOURing {
		t.Skip("epoll behaviour: io_uring, like the portable engine, reports the FIN after bytes received while paused (TestEOFAfterUnseenInput)")
	}
	c := testkit.Dial(t, addr)
	c.Write([]byte("first"))
	testkit.WaitFor(t, "the first bytes", func() bool { return h.received() == "first" })
	c.Write([]byte("-second"))
	c.CloseWrite()
	testkit.WaitFor(t, "OnEOF while paused", h.eof.Load)
	h.mu.Lock()
	ec := h.conn
	h.mu.Unlock()
	ec.Loop().Post(func() { ec.ResumeRead() })
	testkit.WaitFor(t, "the bytes sent before the FIN", func() bool { return h.received() == "first-second" })
}

func (h *pauseAtFirst) OnShutdown(c *Conn) { c.Close(nil) }

// TestBytesBeforeFINAfterOwnHalfClose is the same with this side's sending side
// already shut (CloseWrite) when the peer's FIN arrives: the socket then reports
// EPOLLHUP (both directions shut), which is not a reset, and the bytes the peer sent
// before its FIN must still be delivered on resume. The engine used to close such a
// paused connection at once, dropping them (a relay lost the tail of a stream).
func TestBytesBeforeFINAfterOwnHalfClose(t *testing.T) {
	h := &pauseAtFirst{}
	e, addr := startEngine(t, h, 1)
	if e.Backend() == BackendIOURing {
		t.Skip("epoll behaviour: io_uring, like the portable engine, reports the FIN after bytes received while paused (TestEOFAfterUnseenInput)")
	}
	c := testkit.Dial(t, addr)
	c.Write([]byte("first"))
	testkit.WaitFor(t, "the first bytes", func() bool { return h.received() == "first" })
	h.mu.Lock()
	ec := h.conn
	h.mu.Unlock()
	shut := make(chan error, 1)
	ec.Loop().Post(func() { shut <- ec.CloseWrite() })
	if err := <-shut; err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("after the engine's half-close the client read %d, %v; want end of stream", n, err)
	}
	c.Write([]byte("-second"))
	c.CloseWrite()
	testkit.WaitFor(t, "OnEOF while paused", h.eof.Load)
	ec.Loop().Post(func() { ec.ResumeRead() })
	testkit.WaitFor(t, "the bytes sent before the FIN", func() bool { return h.received() == "first-second" })
}

// TestEOFAfterUnseenInput: with io_uring, bytes that arrive while a connection is
// paused are received ahead of its FIN; the handler gets them (after ResumeRead)
// before OnEOF, never OnEOF first, as with the portable engine.
func TestEOFAfterUnseenInput(t *testing.T) {
	h := &pauseAtFirst{}
	e, addr := startEngine(t, h, 1)
	if e.Backend() != BackendIOURing {
		t.Skip("io_uring behaviour (GALE_ENGINE=io_uring); epoll reports the FIN at once: TestBytesBeforeFINWhilePaused")
	}
	c := testkit.Dial(t, addr)
	c.Write([]byte("first"))
	testkit.WaitFor(t, "the first bytes", func() bool { return h.received() == "first" })
	c.Write([]byte("-second"))
	c.CloseWrite()
	h.mu.Lock()
	ec := h.conn
	h.mu.Unlock()
	// Wait until the loop holds the bytes and has stopped receiving: the receive
	// returned the FIN behind them (fEOFLater) or was cancelled for the pause (the
	// FIN then waits in the socket until the resume).
	testkit.WaitFor(t, "the kept bytes, receiving stopped", func() bool {
		done := make(chan bool, 1)
		ec.Loop().Post(func() { done <- ec.Unread() == len("-second") && ec.flags&fRecv == 0 })
		return <-done
	})
	if h.eof.Load() {
		t.Fatal("OnEOF came before the bytes sent ahead of the FIN")
	}
	ec.Loop().Post(func() { ec.ResumeRead() })
	testkit.WaitFor(t, "OnEOF after the bytes", h.eof.Load)
	if got := h.received(); got != "first-second" {
		t.Fatalf("received %q before OnEOF", got)
	}
}
