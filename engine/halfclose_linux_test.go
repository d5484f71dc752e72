//go:build linux && !galenet

package engine

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/sys/unix"
)

// pauseAtFirst pauses reading after the first bytes it gets; the test resumes it.
type pauseAtFirst struct {
	NopHandler
	mu   sync.Mutex
	conn *Conn
	got  bytes.Buffer
	eof  atomic.Bool
	// atEOF is how many bytes had been received when OnEOF ran.
	atEOF atomic.Int64
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

func (h *pauseAtFirst) OnEOF(*Conn) {
	h.mu.Lock()
	h.atEOF.Store(int64(h.got.Len()))
	h.mu.Unlock()
	h.eof.Store(true)
}

func (h *pauseAtFirst) received() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got.String()
}

// TestBytesBeforeFINWhilePaused checks that bytes a peer sent before its FIN, while
// the connection was paused, are delivered once reading resumes, and that OnEOF
// comes after them, never while they are still unread: a handler that ends a
// close-delimited stream at OnEOF (the proxy) lost them. epoll used to report the
// FIN at once, at the RDHUP.
func TestBytesBeforeFINWhilePaused(t *testing.T) {
	h := &pauseAtFirst{}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	c.Write([]byte("first"))
	testkit.WaitFor(t, "the first bytes", func() bool { return h.received() == "first" })
	h.mu.Lock()
	ec := h.conn
	h.mu.Unlock()
	finBehindBytes(t, h, ec, c)
}

// finBehindBytes has the peer c send "-second" and its FIN to ec, paused after
// "first", and checks that OnEOF comes only after the resume, behind those bytes.
func finBehindBytes(t *testing.T, h *pauseAtFirst, ec *Conn, c *net.TCPConn) {
	t.Helper()
	c.Write([]byte("-second"))
	c.CloseWrite()
	waitPeerFIN(t, ec)
	if h.eof.Load() {
		t.Fatal("OnEOF while the bytes sent before the FIN were still unread")
	}
	ec.Loop().Post(func() { ec.ResumeRead() })
	testkit.WaitFor(t, "OnEOF after the bytes", h.eof.Load)
	if got, at := h.received(), h.atEOF.Load(); got != "first-second" || at != int64(len(got)) {
		t.Fatalf("received %q, %d bytes of it before OnEOF; want first-second, all before", got, at)
	}
}

// TestFINWhilePausedNothingUnread: a peer that half-closes while the connection is
// paused and sent nothing more (a client that leaves during a slow response) is
// reported at once, without waiting for a resume.
func TestFINWhilePausedNothingUnread(t *testing.T) {
	h := &pauseAtFirst{}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	c.Write([]byte("first"))
	testkit.WaitFor(t, "the first bytes", func() bool { return h.received() == "first" })
	c.CloseWrite()
	testkit.WaitFor(t, "OnEOF while paused", h.eof.Load)
}

func (h *pauseAtFirst) OnShutdown(c *Conn) { c.Close(nil) }

// waitPeerFIN waits until ec's socket has received the peer's FIN (its TCP state
// says so), then until the loop has run two more iterations, so that the poller's
// event for it has been handled.
func waitPeerFIN(t *testing.T, ec *Conn) {
	t.Helper()
	onLoop := func(f func()) {
		done := make(chan struct{})
		ec.Loop().Post(func() { f(); close(done) })
		<-done
	}
	testkit.WaitFor(t, "the peer's FIN in the socket", func() bool {
		var st uint8
		onLoop(func() {
			if ti, err := unix.GetsockoptTCPInfo(ec.Fd(), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				st = ti.State
			}
		})
		switch st {
		case unix.BPF_TCP_CLOSE_WAIT, unix.BPF_TCP_LAST_ACK, unix.BPF_TCP_TIME_WAIT, unix.BPF_TCP_CLOSING, unix.BPF_TCP_CLOSE:
			return true
		}
		return false
	})
	onLoop(func() {})
	onLoop(func() {})
}

// TestBytesBeforeFINAfterOwnHalfClose is the same with this side's sending side
// already shut (CloseWrite) when the peer's FIN arrives: the socket then reports
// EPOLLHUP (both directions shut), which is not a reset, and the bytes the peer sent
// before its FIN must still be delivered on resume, before OnEOF. The engine used
// to close such a paused connection at once, dropping them (a relay lost the tail
// of a stream).
func TestBytesBeforeFINAfterOwnHalfClose(t *testing.T) {
	h := &pauseAtFirst{}
	_, addr := startEngine(t, h, 1)
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
	finBehindBytes(t, h, ec, c)
}

// TestEOFAfterUnseenInput: with io_uring, bytes that arrive while a connection is
// paused are received ahead of its FIN; the handler gets them (after ResumeRead)
// before OnEOF, never OnEOF first, as with the portable engine.
func TestEOFAfterUnseenInput(t *testing.T) {
	h := &pauseAtFirst{}
	e, addr := startEngine(t, h, 1)
	if e.Backend() != BackendIOURing {
		t.Skip("io_uring behaviour (GALE_ENGINE=io_uring); TestBytesBeforeFINWhilePaused checks the order on every engine")
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
