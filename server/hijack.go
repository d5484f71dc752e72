package server

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/gale-server/gale/engine"
)

// rawHandler receives a hijacked connection's events on the loop.
type rawHandler interface {
	onData(in []byte) int
	onEOF()
	onDrain()
	onClose(err error)
}

// hijack switches the connection out of HTTP: from now on its bytes go to h. Runs on
// the loop.
func (c *Ctx) hijack(h rawHandler) {
	c.raw = h
	c.ended = true
	c.ec.CancelTimeout()
	c.cn.state = stWait
	c.ec.ResumeRead()
}

func (c *Ctx) srvLogger() interface {
	Error(msg string, args ...any)
} {
	return c.cn.ls.srv.opts.Logger
}

func runtimeStack(buf []byte) int { return runtime.Stack(buf, false) }

// hijackedConn is the net.Conn a net/http handler gets from Hijack. Reads are fed by
// the loop; writes are posted to it. mu guards every field below it.
type hijackedConn struct {
	c  *Ctx
	ec *engine.Conn

	mu       sync.Mutex
	cond     *sync.Cond
	in       []byte
	eof      bool
	err      error
	closed   bool
	paused   bool
	blocked  bool
	inflight int
	rdl, wdl time.Time
	rtimer   *time.Timer
	wtimer   *time.Timer
}

var _ net.Conn = (*hijackedConn)(nil)

const hijackReadHigh = 256 << 10

func newHijackedConn(c *Ctx) *hijackedConn {
	h := &hijackedConn{c: c, ec: c.ec}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *hijackedConn) onData(in []byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return len(in)
	}
	h.in = append(h.in, in...)
	if len(h.in) > hijackReadHigh && !h.paused {
		h.paused = true
		h.ec.PauseRead()
	}
	h.cond.Broadcast()
	return len(in)
}

func (h *hijackedConn) onEOF() {
	h.mu.Lock()
	h.eof = true
	h.cond.Broadcast()
	h.mu.Unlock()
}

func (h *hijackedConn) onDrain() {
	h.mu.Lock()
	h.blocked = false
	h.cond.Broadcast()
	h.mu.Unlock()
}

func (h *hijackedConn) onClose(err error) {
	h.mu.Lock()
	if err == nil {
		err = net.ErrClosed
	}
	h.err = err
	h.closed = true
	h.cond.Broadcast()
	h.mu.Unlock()
}

func (h *hijackedConn) Read(b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.in) == 0 && !h.eof && h.err == nil {
		if !h.rdl.IsZero() && !time.Now().Before(h.rdl) {
			return 0, os.ErrDeadlineExceeded
		}
		h.cond.Wait()
	}
	if len(h.in) == 0 {
		if h.eof {
			return 0, io.EOF
		}
		return 0, h.err
	}
	n := copy(b, h.in)
	h.in = h.in[n:]
	if h.paused && len(h.in) < hijackReadHigh/4 {
		h.paused = false
		h.ec.Loop().Post(func() {
			if !h.ec.Closed() {
				h.ec.ResumeRead()
			}
		})
	}
	return n, nil
}

func (h *hijackedConn) Write(b []byte) (int, error) {
	h.mu.Lock()
	for (h.blocked || h.inflight > adapterWindow) && h.err == nil {
		if !h.wdl.IsZero() && !time.Now().Before(h.wdl) {
			h.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		h.cond.Wait()
	}
	if h.err != nil {
		err := h.err
		h.mu.Unlock()
		return 0, err
	}
	h.inflight += len(b)
	h.mu.Unlock()
	data := append([]byte(nil), b...)
	h.ec.Loop().Post(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.inflight -= len(data)
		h.cond.Broadcast()
		if h.ec.Closed() {
			return
		}
		h.ec.Write(data)
		if h.ec.Buffered() > adapterWindow/2 && !h.blocked {
			h.blocked = true
			h.ec.WantDrain()
		}
	})
	return len(b), nil
}

func (h *hijackedConn) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	if h.err == nil {
		h.err = net.ErrClosed
	}
	h.cond.Broadcast()
	h.mu.Unlock()
	h.ec.Loop().Post(func() { h.ec.CloseAfterFlush(true) })
	return nil
}

func (h *hijackedConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
}

func (h *hijackedConn) RemoteAddr() net.Addr {
	return net.TCPAddrFromAddrPort(h.c.remote)
}

func (h *hijackedConn) SetDeadline(t time.Time) error {
	h.SetReadDeadline(t)
	return h.SetWriteDeadline(t)
}

func (h *hijackedConn) SetReadDeadline(t time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rdl = t
	h.rtimer = h.wake(h.rtimer, t)
	return nil
}

func (h *hijackedConn) SetWriteDeadline(t time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.wdl = t
	h.wtimer = h.wake(h.wtimer, t)
	return nil
}

// wake arranges for waiters to re-check their deadline at t.
func (h *hijackedConn) wake(old *time.Timer, t time.Time) *time.Timer {
	if old != nil {
		old.Stop()
	}
	h.cond.Broadcast()
	if t.IsZero() {
		return nil
	}
	return time.AfterFunc(time.Until(t), func() {
		h.mu.Lock()
		h.cond.Broadcast()
		h.mu.Unlock()
	})
}
