package engine

import (
	"bytes"
	"crypto/sha256"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// writeNowEcho echoes with WriteNow, after a greeting queued with Write (so
// the first WriteNow finds a queue before it and must keep the order).
type writeNowEcho struct {
	NopHandler
	queued atomic.Int64 // largest output queue seen after a WriteNow
}

func (h *writeNowEcho) OnOpen(c *Conn) { c.Write([]byte("hello:")) }

func (h *writeNowEcho) OnData(c *Conn, in []byte) int {
	c.WriteNow(in)
	if q := int64(c.Buffered()); q > h.queued.Load() {
		h.queued.Store(q)
	}
	if c.Buffered() > c.Loop().eng.HighWater() {
		c.PauseRead()
		c.WantDrain()
	}
	return len(in)
}

func (h *writeNowEcho) OnDrain(c *Conn)    { c.ResumeRead() }
func (h *writeNowEcho) OnShutdown(c *Conn) { c.Close(nil) }

// TestWriteNowOrderAndRemainder checks WriteNow's contract: bytes queued before
// it go first, what the socket does not take is queued and sent later in order,
// and nothing is lost or repeated. The client sends 32 MiB before it reads a
// byte, so the echo's socket fills and WriteNow queues remainders.
func TestWriteNowOrderAndRemainder(t *testing.T) {
	h := &writeNowEcho{}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	const total = 32 << 20
	src := sha256.New()
	src.Write([]byte("hello:"))
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for sent := 0; sent < total; sent += len(buf) {
			for i := range buf {
				buf[i] = byte(sent>>16) + byte(i*7)
			}
			src.Write(buf)
			if _, err := c.Write(buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	testkit.WaitFor(t, "a WriteNow that left bytes queued", func() bool { return h.queued.Load() > 0 })
	dst := sha256.New()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	n, err := io.CopyN(dst, c, total+6)
	if err != nil {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src.Sum(nil), dst.Sum(nil)) {
		t.Fatal("echoed bytes differ from those sent (order or content)")
	}
}
