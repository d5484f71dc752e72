//go:build linux && !galenet

package engine

import (
	"bytes"
	"crypto/rand"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/sys/unix"
)

// spliceEcho echoes with no copy through user space: read notification tells it
// the socket is readable, it splices the socket into a pipe and queues the pipe's
// bytes back with SplicePipe, pausing while the pipe is in use.
type spliceEcho struct {
	NopHandler
	notifyOK atomic.Bool
	moved    atomic.Int64
	closed   chan struct{}
}

type pipePair struct{ r, w int }

func (h *spliceEcho) OnOpen(c *Conn) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		c.Close(err)
		return
	}
	c.SetContext(&pipePair{p[0], p[1]})
	h.notifyOK.Store(c.SetReadNotify(true))
}

func (h *spliceEcho) OnData(c *Conn, in []byte) int {
	c.Close(nil) // read notification is on: the engine must not read
	return len(in)
}

func (h *spliceEcho) OnReadable(c *Conn) {
	p := c.Context().(*pipePair)
	for {
		if c.Pending() { // the pipe still holds bytes on their way out
			c.PauseRead()
			c.WantFlushed()
			return
		}
		n, err := unix.Splice(c.Fd(), nil, p.w, nil, 64<<10, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		switch {
		case err == unix.EAGAIN:
			return
		case err != nil:
			c.Close(err)
			return
		case n == 0:
			c.CloseAfterFlush(true)
			return
		}
		h.moved.Add(n)
		c.SplicePipe(p.r, n, nil)
	}
}

func (h *spliceEcho) OnFlushed(c *Conn) { c.ResumeRead() }

func (h *spliceEcho) OnClose(c *Conn, _ error) {
	if h.closed != nil {
		close(h.closed)
	}
	if p, ok := c.Context().(*pipePair); ok {
		unix.Close(p.r)
		unix.Close(p.w)
	}
}

// TestSpliceEcho moves a megabyte through socket → pipe → socket with read
// notification and pipe segments, and closes once both sides have ended: the
// peer's end of stream was read by the handler, and lingering after its own FIN
// the engine must still find the peer gone rather than wait out the linger
// timeout.
func TestSpliceEcho(t *testing.T) {
	h := &spliceEcho{closed: make(chan struct{})}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	msg := make([]byte, 1<<20)
	rand.Read(msg)
	go func() {
		c.Write(msg)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("got %d bytes (equal %v), %v", len(got), bytes.Equal(got, msg), err)
	}
	if !h.notifyOK.Load() || h.moved.Load() != int64(len(msg)) {
		t.Fatalf("SetReadNotify(true) reported %v; %d bytes spliced", h.notifyOK.Load(), h.moved.Load())
	}
	select {
	case <-h.closed:
	case <-time.After(lingerTimeout / 2):
		t.Fatalf("the connection was still open %v after both ends were closed", lingerTimeout/2)
	}
}
