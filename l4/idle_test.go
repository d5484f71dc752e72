package l4

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestIdleCountsDelivery: a relay whose client reads slowly but steadily is
// not idle, though the relay itself reads nothing for longer than the idle
// timeout while the queue for that client drains (it is paused for
// backpressure). It was closed at the idle timeout: the client got the bytes
// queued so far and a clean FIN, a stream cut short without an error, and the
// upstream a reset.
func TestIdleCountsDelivery(t *testing.T) {
	data := make([]byte, 6<<20) // more than the kernel's socket buffers hold
	rand.Read(data)
	upstream := serve(t, func(c *net.TCPConn) {
		c.Write(data)
		c.CloseWrite()
		io.Copy(io.Discard, c)
	})
	bothPaths(t, func(t *testing.T, after int64) {
		_, addr := startProxy(t, Options{Upstreams: group(upstream), SpliceAfter: after,
			IdleTimeout: 100 * time.Millisecond})
		for try := 1; ; try++ {
			got, stalled := slowRead(t, addr)
			if bytes.Equal(got, data) {
				return
			}
			// A client that itself went most of an idle period without a
			// read (a busy machine, the race detector) may rightly be
			// closed as idle: that run proves nothing and is repeated.
			if stalled < 90*time.Millisecond || try == 5 {
				t.Fatalf("the client got %d of %d bytes (equal prefix: %v; longest wait between its reads %v); want all of them",
					len(got), len(data), bytes.Equal(got, data[:min(len(got), len(data))]), stalled)
			}
		}
	})
}

// slowRead reads a relay at addr to its end, pausing 10 ms after each read
// through a small window, and returns the bytes and the longest time from the
// end of one read to the start of the next (its own pauses).
func slowRead(t *testing.T, addr string) (got []byte, stalled time.Duration) {
	// A small receive buffer keeps the client's window small, so the bytes
	// wait in the relay and its socket.
	nc, err := dialWindow(addr, 16384)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 64<<10)
	for {
		n, err := nc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, stalled
		}
		done := time.Now()
		time.Sleep(10 * time.Millisecond)
		stalled = max(stalled, time.Since(done))
	}
}

// TestIdleStuckReader: a client that reads nothing while the relay holds bytes
// for it is idle: the relay ends within the idle timeout and one more period,
// and the upstream sees it (its writes fail).
func TestIdleStuckReader(t *testing.T) {
	ended := make(chan error, 1)
	upstream := serve(t, func(c *net.TCPConn) {
		_, err := c.Write(make([]byte, 64<<20))
		ended <- err
	})
	px, addr := startProxy(t, Options{Upstreams: group(upstream), IdleTimeout: 100 * time.Millisecond})
	c := dial(t, addr)
	start := time.Now()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the upstream wrote 64 MiB to a client that reads nothing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the relay of a client that reads nothing is still open after 30 s")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the relay ended after %v; want about two idle periods", d)
	}
	c.Close()
	testkit.WaitFor(t, "the relay to end", func() bool { return px.Stats().Active == 0 })
}

// TestIdleSteadyReader: a client that empties its receive buffer every 50 ms
// of a download it has not caught up with, and now and then sends a byte, is
// never idle by an idle timeout of 100 ms. Each check that ends a period
// compared the client's acknowledged bytes with the sample taken by the check
// before it, which may have run only a tick or two earlier: a check that finds
// a recent read (the client's byte) re-arms for the rest of the period, and it
// sampled too. No read inside that short window closed the relay in the middle
// of the stream (in most runs under -race, a few without). A run in which the
// client itself paused 90 ms between two reads (a busy machine) proves nothing
// and is repeated.
func TestIdleSteadyReader(t *testing.T) {
	data := make([]byte, 8<<20)
	upstream := serve(t, func(c *net.TCPConn) {
		go c.Write(data)
		io.Copy(io.Discard, c) // until the relay ends
	})
	bothPaths(t, func(t *testing.T, after int64) {
		_, addr := startProxy(t, Options{Upstreams: group(upstream), SpliceAfter: after,
			IdleTimeout: 100 * time.Millisecond})
		for try := 1; ; try++ {
			err := steadyReader(addr)
			if err == nil {
				return
			}
			if !errors.Is(err, errClientStalled) || try == 10 {
				t.Fatal(err)
			}
		}
	})
}

// bothPaths runs f as a subtest for a relay that copies (SpliceAfter 0) and
// one that splices after 256 KiB.
func bothPaths(t *testing.T, f func(t *testing.T, after int64)) {
	t.Run("copy", func(t *testing.T) { f(t, 0) })
	t.Run("splice", func(t *testing.T) { f(t, 256<<10) })
}

// dialWindow connects to addr with a receive buffer of rcvbuf bytes (a small
// window, so bytes for the client wait in the relay and its socket).
func dialWindow(addr string, rcvbuf int) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		})
	}}
	return d.Dial("tcp", addr)
}

// errClientStalled is steadyReader's error when the client itself fell behind.
var errClientStalled = errors.New("the client paused 90 ms between reads")

// steadyReader reads all it has every 50 ms from a relay at addr, 60 times,
// and sends a byte every third time; it returns the first failure. Each read
// empties the small receive buffer, so the kernel opens the window at once
// (a read of part of it may not: the sender then waits for its zero-window
// probe, and no byte is acknowledged for a few hundred ms).
func steadyReader(addr string) error {
	nc, err := dialWindow(addr, 32768)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 256<<10)
	got := 0
	for i := range 60 {
		if i%3 == 0 {
			if _, err := nc.Write([]byte{'x'}); err != nil {
				return fmt.Errorf("write %d: %w", i, err)
			}
		}
		n, err := nc.Read(buf)
		got += n
		if err != nil {
			return fmt.Errorf("read %d, after %d bytes: %w; the relay was closed while the client read every 50 ms", i, got, err)
		}
		done := time.Now()
		time.Sleep(50 * time.Millisecond)
		if gap := time.Since(done); gap > 90*time.Millisecond {
			return fmt.Errorf("%w (%v, read %d)", errClientStalled, gap, i)
		}
	}
	return nil
}
