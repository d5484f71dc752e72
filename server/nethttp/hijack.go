package nethttp

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/server"
)

// hijackedConn is the net.Conn a net/http handler gets from Hijack: a pipe whose
// input half is fed by the loop with the connection's bytes and whose output half
// posts writes to the loop. ec, lay and the addresses are set before the handler
// sees the connection and never change.
type hijackedConn struct {
	ec            *engine.Conn
	lay           server.Layer // the TLS layer output goes through; nil on a plain connection
	pipe          pipe
	local, remote net.Addr
}

var (
	_ net.Conn = (*hijackedConn)(nil)
	_ loopSide = (*hijackedConn)(nil)
)

// hijack takes c's connection out of HTTP on its loop and returns it as a net.Conn,
// after writing head (a response head set before hijacking, or nil); it runs on the
// handler goroutine and waits for the loop, or for gone (the request context) if the
// connection closes before the loop got to it.
func hijack(c *server.Ctx, gone <-chan struct{}, head []byte) (*hijackedConn, error) {
	h := &hijackedConn{ec: c.Conn()}
	h.pipe.init(h, net.ErrClosed)
	// state settles who decides: the loop (1, it hijacks and reports) or the
	// goroutine (2, it gave up; the loop must then leave the connection alone).
	var state atomic.Int32
	done := make(chan error, 1)
	c.Loop().Post(func() {
		if !state.CompareAndSwap(0, 1) {
			return
		}
		h.local = net.TCPAddrFromAddrPort(h.ec.LocalAddr())
		h.remote = net.TCPAddrFromAddrPort(h.ec.RemoteAddr())
		h.lay = c.Layer()
		err := c.Hijack(rawConns)
		if err == nil && head != nil {
			err = h.ec.Write(head)
		}
		if err == nil {
			// Before the end of this loop iteration, where the first OnData comes.
			h.ec.SetContext(h)
		}
		done <- err
	})
	var err error
	select {
	case err = <-done:
	case <-gone:
		if state.CompareAndSwap(0, 2) {
			return nil, errConnGone
		}
		err = <-done
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

// post runs f on the loop unless the connection has closed by then.
func (h *hijackedConn) post(f func()) {
	h.ec.Loop().Post(func() {
		if !h.ec.Closed() {
			f()
		}
	})
}

// postRaw runs f on the loop; f checks gone.
func (h *hijackedConn) postRaw(f func()) { h.ec.Loop().Post(f) }

// gone reports, on the loop, whether the connection has closed.
func (h *hijackedConn) gone() bool { return h.ec.Closed() }

func (h *hijackedConn) pauseInput()     { h.ec.PauseRead() }
func (h *hijackedConn) resumeInput()    { h.resume() }
func (h *hijackedConn) buffered() int   { return h.out().Buffered() }
func (h *hijackedConn) wantDrain()      { h.out().WantDrain() }
func (h *hijackedConn) finished() error { return nil }

func (h *hijackedConn) Read(b []byte) (int, error) { return h.pipe.Read(b) }

func (h *hijackedConn) Write(b []byte) (int, error) {
	data := append([]byte(nil), b...)
	if err := h.pipe.send(len(data), func() { h.out().Write(data) }); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close sends what was written, then closes the connection.
func (h *hijackedConn) Close() error {
	if h.pipe.outputErr() != nil {
		return nil
	}
	h.pipe.closeRead()
	h.pipe.fail(nil, net.ErrClosed)
	h.pipe.stopDeadlines()
	h.post(func() {
		if h.lay != nil {
			h.lay.CloseNotify()
		}
		h.ec.CloseAfterFlush(true)
	})
	return nil
}

func (h *hijackedConn) LocalAddr() net.Addr  { return h.local }
func (h *hijackedConn) RemoteAddr() net.Addr { return h.remote }

func (h *hijackedConn) SetDeadline(t time.Time) error {
	h.pipe.setReadDeadline(t)
	h.pipe.setWriteDeadline(t)
	return nil
}

func (h *hijackedConn) SetReadDeadline(t time.Time) error {
	h.pipe.setReadDeadline(t)
	return nil
}

func (h *hijackedConn) SetWriteDeadline(t time.Time) error {
	h.pipe.setWriteDeadline(t)
	return nil
}

// rawHandler is the engine.Handler of every hijacked connection (one value, so a
// loop's handler table gets one entry); the connection's context is its
// *hijackedConn.
type rawHandler struct{ engine.NopHandler }

var rawConns server.LayeredHandler = &rawHandler{}

// OpenLayered does nothing: hijack reads the layer from the Ctx before it hands
// the connection over, and the context is set right after.
func (rawHandler) OpenLayered(*engine.Conn, server.Layer) {}

func (rawHandler) OnData(ec *engine.Conn, in []byte) int {
	ec.Context().(*hijackedConn).pipe.put(in)
	return len(in)
}

func (rawHandler) OnEOF(ec *engine.Conn)   { ec.Context().(*hijackedConn).pipe.end() }
func (rawHandler) OnDrain(ec *engine.Conn) { ec.Context().(*hijackedConn).pipe.drained() }

func (rawHandler) OnClose(ec *engine.Conn, err error) {
	if err == nil {
		err = net.ErrClosed
	}
	ec.Context().(*hijackedConn).pipe.fail(err, err)
}

// out is where the handler's bytes go: the TLS layer, or the engine connection.
func (h *hijackedConn) out() server.Stream {
	if h.lay != nil {
		return h.lay
	}
	return h.ec
}

// resume resumes reading, through the layer when there is one (it re-delivers
// the input it holds).
func (h *hijackedConn) resume() {
	if h.lay != nil {
		h.lay.ResumeRead()
		return
	}
	h.ec.ResumeRead()
}
