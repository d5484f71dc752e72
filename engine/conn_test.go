package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// These tests use only the engine's API, so they hold both the epoll engine and the
// portable one (go test -tags galenet) to the same contract.

// script is a test handler whose OnData and OnEOF are set per test; it records what
// the engine reports. Callbacks run on the loop; the atomics are read by the test.
type script struct {
	data    func(c *Conn, in []byte) int
	eof     func(c *Conn)
	open    func(c *Conn)
	eofs    atomic.Int64
	closes  atomic.Int64
	lastErr atomic.Pointer[error]
}

func (h *script) OnOpen(c *Conn) {
	if h.open != nil {
		h.open(c)
	}
}
func (h *script) OnData(c *Conn, in []byte) int { return h.data(c, in) }
func (h *script) OnEOF(c *Conn) {
	h.eofs.Add(1)
	if h.eof != nil {
		h.eof(c)
		return
	}
	c.CloseAfterFlush(true)
}
func (h *script) OnDrain(c *Conn)    {}
func (h *script) OnTimeout(c *Conn)  { c.Close(nil) }
func (h *script) OnShutdown(c *Conn) {}
func (h *script) OnClose(c *Conn, err error) {
	h.lastErr.Store(&err)
	h.closes.Add(1)
}

// closeErr returns the reason passed to the last OnClose.
func (h *script) closeErr() error {
	if p := h.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// dialWith connects with d; the connection has a 10 s deadline and is closed when
// the test ends.
func dialWith(t *testing.T, d *net.Dialer, addr string) *net.TCPConn {
	t.Helper()
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// openTemp returns a file holding content, open for reading until the test ends.
func openTemp(t *testing.T, content []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestSendFileBetweenWrites sends a file range between two memory writes; release
// must run once, after which the caller's descriptor is still its own.
func TestSendFileBetweenWrites(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640,000 bytes
	f := openTemp(t, content)
	var released atomic.Int64
	var fdOK, addrOK atomic.Bool
	var peer atomic.Pointer[string]
	h := &script{data: func(c *Conn, in []byte) int {
		fdOK.Store(c.Fd() >= 0)
		addrOK.Store(c.RemoteAddr().String() == *peer.Load())
		c.Write([]byte("<"))
		c.SendFile(int(f.Fd()), 7, int64(len(content))-7, func() { released.Add(1) })
		if !c.Pending() {
			t.Error("Pending is false with a file queued")
		}
		c.Write([]byte(">"))
		c.CloseAfterFlush(true)
		return len(in)
	}}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	local := c.LocalAddr().String()
	peer.Store(&local)
	c.Write([]byte("go"))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte("<"), content[7:]...), '>')
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d (equal %v)", len(got), len(want), bytes.Equal(got, want))
	}
	testkit.WaitFor(t, "release", func() bool { return released.Load() == 1 })
	if !fdOK.Load() || !addrOK.Load() {
		t.Fatalf("Fd valid %v, RemoteAddr matches the client %v", fdOK.Load(), addrOK.Load())
	}
	if _, err := f.ReadAt(make([]byte, 4), 0); err != nil {
		t.Fatalf("caller's descriptor after release: %v", err)
	}
}

// TestSendFileShrank promises more bytes than the file has: the connection closes
// with ErrFileShrank after sending what there was, and release still runs once.
func TestSendFileShrank(t *testing.T) {
	f := openTemp(t, []byte("short"))
	var released atomic.Int64
	h := &script{data: func(c *Conn, in []byte) int {
		c.SendFile(int(f.Fd()), 0, 100, func() { released.Add(1) })
		return len(in)
	}}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	c.Write([]byte("go"))
	got, _ := io.ReadAll(c)
	if string(got) != "short" {
		t.Fatalf("got %q", got)
	}
	testkit.WaitFor(t, "close", func() bool { return h.closes.Load() == 1 })
	if !errors.Is(h.closeErr(), ErrFileShrank) || released.Load() != 1 {
		t.Fatalf("close reason %v, releases %d", h.closeErr(), released.Load())
	}
}

// TestEOFWhilePaused: a paused connection still learns that the peer half-closed,
// and bytes it left unconsumed are passed again after ResumeRead.
func TestEOFWhilePaused(t *testing.T) {
	var calls atomic.Int64
	h := &script{
		data: func(c *Conn, in []byte) int {
			if calls.Add(1) == 1 {
				c.PauseRead() // keep "ping" for later
				return 0
			}
			c.Write(append([]byte("got "), in...))
			c.CloseAfterFlush(true)
			return len(in)
		},
		eof: func(c *Conn) {
			if c.Unread() != 4 {
				c.Close(errors.New("retained input lost"))
				return
			}
			c.ResumeRead()
		},
	}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	c.Write([]byte("ping"))
	testkit.WaitFor(t, "first OnData", func() bool { return calls.Load() == 1 })
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got ping" {
		t.Fatalf("got %q, %v (close reason %v)", got, err, h.closeErr())
	}
	if h.eofs.Load() != 1 {
		t.Fatalf("OnEOF called %d times", h.eofs.Load())
	}
}

// TestInputOverflow: a handler that never consumes is cut off with
// ErrInputOverflow once the engine would have to hold more than maxRetained bytes.
func TestInputOverflow(t *testing.T) {
	h := &script{data: func(c *Conn, in []byte) int { return 0 }}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	go c.Write(make([]byte, 4*maxRetained)) // fails once the server closes
	testkit.WaitFor(t, "close", func() bool { return h.closes.Load() == 1 })
	if !errors.Is(h.closeErr(), ErrInputOverflow) {
		t.Fatalf("close reason %v", h.closeErr())
	}
}

// TestAbortResets: Abort ends the connection with a reset, not an orderly EOF.
func TestAbortResets(t *testing.T) {
	h := &script{data: func(c *Conn, in []byte) int {
		c.Write([]byte("never mind"))
		c.Abort(errors.New("test abort"))
		return len(in)
	}}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	c.Write([]byte("x"))
	_, err := io.ReadAll(c)
	if err == nil {
		t.Fatal("orderly EOF after Abort, want a reset")
	}
	testkit.WaitFor(t, "close", func() bool { return h.closes.Load() == 1 })
	if h.closeErr() == nil || h.closeErr().Error() != "test abort" {
		t.Fatalf("close reason %v", h.closeErr())
	}
}

// TestLoopAfterAndNow: After runs on the loop no earlier than asked, and Now moves.
func TestLoopAfterAndNow(t *testing.T) {
	e, _ := startEngine(t, &echo{}, 1)
	l := e.Loops()[0]
	type result struct{ set, fired time.Time }
	ch := make(chan result, 1)
	l.Post(func() {
		set := l.Now()
		l.After(30*time.Millisecond, func() { ch <- result{set, l.Now()} })
	})
	select {
	case r := <-ch:
		if d := r.fired.Sub(r.set); d < 30*time.Millisecond {
			t.Fatalf("After(30ms) ran after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("After never ran")
	}
}

// TestShutdownGraceEnds: connections whose handler ignores OnShutdown are cut with
// ErrShutdown when the context ends, and Shutdown reports the context's error.
func TestShutdownGraceEnds(t *testing.T) {
	opened := make(chan struct{}, 1)
	h := &script{
		data: func(c *Conn, in []byte) int { return len(in) },
		open: func(*Conn) { opened <- struct{}{} },
	}
	e, err := New(Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := e.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	c := testkit.Dial(t, addr)
	<-opened
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v", err)
	}
	if !errors.Is(h.closeErr(), ErrShutdown) {
		t.Fatalf("close reason %v", h.closeErr())
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Shutdown")
	}
}
