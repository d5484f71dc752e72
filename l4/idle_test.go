package l4

import (
	"bytes"
	"context"
	"crypto/rand"
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
	for _, tc := range []struct {
		name  string
		after int64
	}{{"copy", 0}, {"splice", 256 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startProxy(t, Options{Upstreams: group(upstream), SpliceAfter: tc.after,
				IdleTimeout: 100 * time.Millisecond})
			// A small receive buffer keeps the client's window small, so
			// the bytes wait in the relay and its socket.
			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16384)
				})
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			nc, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(60 * time.Second))
			var got []byte
			buf := make([]byte, 64<<10)
			for {
				n, err := nc.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("the client got %d of %d bytes (equal prefix: %v); want all of them",
					len(got), len(data), bytes.Equal(got, data[:min(len(got), len(data))]))
			}
		})
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
