//go:build unix

package engine

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// Write-progress tests: small socket buffers on both sides, so that output stays
// queued in the engine while the peer does not read.

const smallSockBuf = 8 << 10

// shrinkSendBuf makes the kernel hold little of c's output.
func shrinkSendBuf(c *Conn) {
	syscall.SetsockoptInt(c.Fd(), syscall.SOL_SOCKET, syscall.SO_SNDBUF, smallSockBuf)
}

// dialSmall connects with a small receive buffer, set before the handshake.
func dialSmall(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, smallSockBuf)
		})
	}}
	c := dialWith(t, &d, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// TestWriteTimeoutNeverReadingPeer: for every kind of queued output, a peer that
// never reads gets the connection closed with ErrWriteTimeout.
func TestWriteTimeoutNeverReadingPeer(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 4<<20)
	kinds := map[string]func(t *testing.T, c *Conn){
		"memory": func(_ *testing.T, c *Conn) { c.Write(body) },
		"file": func(t *testing.T, c *Conn) {
			f := openTemp(t, body)
			c.SendFile(int(f.Fd()), 0, int64(len(body)), nil)
		},
		"memory then CloseAfterFlush(true)": func(_ *testing.T, c *Conn) {
			c.Write(body)
			c.CloseAfterFlush(true)
		},
		"file then CloseAfterFlush(false)": func(t *testing.T, c *Conn) {
			f := openTemp(t, body)
			c.SendFile(int(f.Fd()), 0, int64(len(body)), nil)
			c.CloseAfterFlush(false)
		},
	}
	for name, queue := range kinds {
		t.Run(name, func(t *testing.T) {
			h := &script{
				open: func(c *Conn) { shrinkSendBuf(c); c.SetWriteTimeout(100 * time.Millisecond) },
				data: func(c *Conn, in []byte) int { queue(t, c); return len(in) },
				eof:  func(c *Conn) {},
			}
			_, addr := startEngine(t, h, 1)
			c := dialSmall(t, addr)
			c.Write([]byte("go"))
			testkit.WaitFor(t, "write timeout", func() bool { return h.closes.Load() == 1 })
			if !errors.Is(h.closeErr(), ErrWriteTimeout) {
				t.Fatalf("close reason %v", h.closeErr())
			}
		})
	}
}

// TestWriteTimeoutSlowSteadyReader: a peer that reads a little at a time, for much
// longer than the write timeout in total, gets everything, from memory and from a
// file.
func TestWriteTimeoutSlowSteadyReader(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
	const timeout = time.Second
	for _, file := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "file"}[file], func(t *testing.T) {
			t.Parallel()
			h := &script{
				open: func(c *Conn) { shrinkSendBuf(c); c.SetWriteTimeout(timeout) },
				data: func(c *Conn, in []byte) int {
					if file {
						f := openTemp(t, body)
						c.SendFile(int(f.Fd()), 0, int64(len(body)), nil)
					} else {
						c.Write(body)
					}
					c.CloseAfterFlush(true)
					return len(in)
				},
			}
			_, addr := startEngine(t, h, 1)
			c := dialSmall(t, addr)
			c.Write([]byte("go"))
			start := time.Now()
			got := make([]byte, 0, len(body))
			// Pace the reader at about 2 MB/s (20 KB per 10 ms): the whole transfer
			// takes twice the write timeout, while what the kernel buffers on
			// loopback (a few hundred KB) drains well within it.
			for len(got) < len(body) {
				chunk := make([]byte, min(20<<10, len(body)-len(got)))
				if _, err := io.ReadFull(c, chunk); err != nil {
					t.Fatalf("after %d bytes: %v (server: %v)", len(got), err, h.closeErr())
				}
				got = append(got, chunk...)
				time.Sleep(10 * time.Millisecond)
			}
			if !bytes.Equal(got, body) {
				t.Fatalf("got %d bytes, want %d", len(got), len(body))
			}
			if took := time.Since(start); took < 3*timeout/2 {
				t.Fatalf("the transfer took only %v; the test needs it to outlast the timeout", took)
			}
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("after the body: %v, want EOF", err)
			}
			c.Close()
			testkit.WaitFor(t, "close", func() bool { return h.closes.Load() == 1 })
			if err := h.closeErr(); err != nil {
				t.Fatalf("close reason %v", err)
			}
		})
	}
}

// flushProbe is a handler that queues output and asks for OnFlushed.
type flushProbe struct {
	NopHandler
	queue    func(c *Conn)
	flushed  atomic.Int64
	leftover atomic.Int64 // QueuedBytes seen in OnFlushed
	pending  atomic.Bool  // Pending seen in OnFlushed
}

func (h *flushProbe) OnData(c *Conn, in []byte) int {
	h.queue(c)
	c.WantFlushed()
	return len(in)
}

func (h *flushProbe) OnShutdown(c *Conn) { c.Close(nil) }

func (h *flushProbe) OnFlushed(c *Conn) {
	h.flushed.Add(1)
	h.leftover.Store(c.QueuedBytes())
	h.pending.Store(c.Pending())
}

// TestWantFlushed: OnFlushed comes once, only when memory and file output are all
// sent; QueuedBytes counts both kinds.
func TestWantFlushed(t *testing.T) {
	body := bytes.Repeat([]byte("y"), 1<<20)
	f := openTemp(t, body)
	var queued atomic.Int64
	h := &flushProbe{queue: func(c *Conn) {
		shrinkSendBuf(c)
		c.Write([]byte("head"))
		c.SendFile(int(f.Fd()), 0, int64(len(body)), nil)
		c.Write([]byte("tail"))
		queued.Store(c.QueuedBytes())
	}}
	_, addr := startEngine(t, h, 1)
	c := dialSmall(t, addr)
	c.Write([]byte("go"))
	want := int64(len(body) + 8)
	half := make([]byte, want/2)
	if _, err := io.ReadFull(c, half); err != nil {
		t.Fatal(err)
	}
	if q := queued.Load(); q != want {
		t.Fatalf("QueuedBytes right after queueing = %d, want %d", q, want)
	}
	// Half a megabyte is still to come, more than the socket buffers hold: the engine
	// still has output queued.
	if n := h.flushed.Load(); n != 0 {
		t.Fatalf("OnFlushed called with half the output unsent")
	}
	if _, err := io.ReadFull(c, make([]byte, want-want/2)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "OnFlushed", func() bool { return h.flushed.Load() == 1 })
	if h.leftover.Load() != 0 || h.pending.Load() {
		t.Fatalf("in OnFlushed: QueuedBytes %d, Pending %v", h.leftover.Load(), h.pending.Load())
	}
	// Nothing queued: OnFlushed at the end of the iteration.
	h2 := &flushProbe{queue: func(*Conn) {}}
	_, addr2 := startEngine(t, h2, 1)
	c2 := testkit.Dial(t, addr2)
	c2.Write([]byte("go"))
	testkit.WaitFor(t, "OnFlushed with nothing queued", func() bool { return h2.flushed.Load() == 1 })
}

// TestSharedReleasedOnEarlyClose: a shared buffer still queued when the peer goes
// away is released by the close, once.
func TestSharedReleasedOnEarlyClose(t *testing.T) {
	var freed atomic.Int64
	s := NewShared(bytes.Repeat([]byte("z"), 4<<20), func() { freed.Add(1) })
	var queuedLeft atomic.Int64
	h := &script{
		open: shrinkSendBuf,
		data: func(c *Conn, in []byte) int {
			c.WriteShared(s)
			queuedLeft.Store(c.QueuedBytes())
			return len(in)
		},
		eof: func(c *Conn) { c.Close(nil) },
	}
	_, addr := startEngine(t, h, 1)
	c := dialSmall(t, addr)
	c.Write([]byte("go"))
	testkit.WaitFor(t, "queued", func() bool { return queuedLeft.Load() > 0 })
	s.Release()
	if freed.Load() != 0 {
		t.Fatal("freed while a connection holds it")
	}
	c.Close()
	testkit.WaitFor(t, "close", func() bool { return h.closes.Load() == 1 })
	if freed.Load() != 1 {
		t.Fatalf("freed %d times, want once", freed.Load())
	}
}

// TestSplicePipe queues bytes waiting in a pipe between two memory writes: they
// arrive in order (spliced on Linux, copied by the portable engine) and release
// runs once.
func TestSplicePipe(t *testing.T) {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	body := bytes.Repeat([]byte("pipe"), 8<<10) // 32 KiB: fits in the pipe
	if n, err := syscall.Write(p[1], body); err != nil || n != len(body) {
		t.Fatalf("filling the pipe: %d, %v", n, err)
	}
	var released atomic.Int64
	h := &script{data: func(c *Conn, in []byte) int {
		c.Write([]byte("<"))
		c.SplicePipe(p[0], int64(len(body)), func() { released.Add(1) })
		c.Write([]byte(">"))
		c.CloseAfterFlush(true)
		return len(in)
	}}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	c.Write([]byte("go"))
	got, err := io.ReadAll(c)
	if want := "<" + string(body) + ">"; err != nil || string(got) != want {
		t.Fatalf("got %d bytes, want %d (%v)", len(got), len(want), err)
	}
	testkit.WaitFor(t, "release", func() bool { return released.Load() == 1 })
}
