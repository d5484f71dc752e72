package tlsterm

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gale-server/gale/engine"
)

// errWouldBlock is what recordConn.Read returns on the loop when every byte that
// has arrived was taken: a temporary net.Error, on which crypto/tls keeps its
// record state (a partial record stays in its input buffer) instead of failing the
// connection, so that the next bytes continue where these stopped.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "tlsterm: no more input has arrived" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// errHandshakeClosed ends a handshake goroutine's wait for input once the
// connection has closed (the client left, or the handshake timed out).
var errHandshakeClosed = errors.New("tlsterm: connection closed during the handshake")

// recordConn is the net.Conn crypto/tls reads records from and writes records to.
// It has two modes. During the handshake a pool goroutine drives crypto/tls: Read
// waits for bytes the loop pushes (hs fields, under mu) and the ciphertext
// Write gathers is posted to the loop when Read waits and when the handshake
// ends. Once the loop has learnt that the handshake completed
// (through Post, so every goroutine write happened before), onLoop is set and
// only the loop uses it: Read copies from the bytes of the current OnData call
// (src) and reports errWouldBlock when they are used up; Write queues the
// ciphertext on the engine connection at once.
type recordConn struct {
	ec     *engine.Conn
	sink   func(b []byte) // tests only: takes every write instead of ec (copy b to keep it)
	local  net.Addr
	remote net.Addr

	// Handshake mode: guarded by mu.
	mu     sync.Mutex
	hs     []byte        // bytes pushed by the loop, not yet read by crypto/tls
	closed bool          // the connection closed: Read fails
	ready  chan struct{} // signalled (capacity 1) when hs grows or closed is set
	cpu    *cpuTokens    // released while Read waits for the client
	// out is the ciphertext crypto/tls wrote during the handshake and not yet
	// posted to the loop. Only the handshake goroutine uses it: Read posts it
	// before it waits for the client (nothing needs to leave sooner, since the
	// client answers only what it has received) and the goroutine posts the
	// rest with the handshake's result, so that a TLS 1.3 server flight and its
	// session ticket take one Post and one sendmsg instead of two.
	out []byte
	// auth is the ClientAuth of the configuration the handshake chose (set in
	// GetConfigForClient), nil when none; only the handshake goroutine uses it.
	auth *ClientAuth

	// Loop mode: owned by the loop once onLoop is set.
	onLoop bool
	src    []byte // the bytes of the current OnData call
	off    int    // how many of src crypto/tls has taken
}

var _ net.Conn = (*recordConn)(nil)

func newRecordConn(ec *engine.Conn, cpu *cpuTokens) *recordConn {
	r := &recordConn{ec: ec, ready: make(chan struct{}, 1), cpu: cpu}
	if ec != nil {
		r.local = net.TCPAddrFromAddrPort(ec.LocalAddr())
		r.remote = net.TCPAddrFromAddrPort(ec.RemoteAddr())
	}
	return r
}

// push hands bytes that arrived during the handshake to the goroutine (loop side)
// and reports how many it now holds unread.
func (r *recordConn) push(b []byte) int {
	r.mu.Lock()
	r.hs = append(r.hs, b...)
	n := len(r.hs)
	r.mu.Unlock()
	r.signal()
	return n
}

// shut makes a waiting or later handshake Read fail (loop side).
func (r *recordConn) shut() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.signal()
}

func (r *recordConn) signal() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

// Read gives crypto/tls the bytes that have arrived.
func (r *recordConn) Read(b []byte) (int, error) {
	if r.onLoop {
		if len(r.hs) > 0 { // bytes the client sent right after its Finished
			n := copy(b, r.hs)
			r.hs = r.hs[n:]
			if len(r.hs) == 0 {
				r.hs = nil
			}
			return n, nil
		}
		if r.off >= len(r.src) {
			return 0, errWouldBlock
		}
		n := copy(b, r.src[r.off:])
		r.off += n
		return n, nil
	}
	r.mu.Lock()
	for len(r.hs) == 0 && !r.closed {
		r.mu.Unlock()
		r.postOut()
		r.cpu.release()
		<-r.ready
		r.cpu.acquire()
		r.mu.Lock()
	}
	defer r.mu.Unlock()
	if len(r.hs) == 0 {
		return 0, errHandshakeClosed
	}
	n := copy(b, r.hs)
	r.hs = r.hs[n:]
	if len(r.hs) == 0 {
		r.hs = nil
	}
	return n, nil
}

// Write queues ciphertext on the engine connection: at once on the loop, or,
// from the handshake goroutine, gathered in out for the next post (see out).
func (r *recordConn) Write(b []byte) (int, error) {
	if r.sink != nil {
		r.sink(b)
		return len(b), nil
	}
	if r.onLoop {
		if err := r.ec.Write(b); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	r.out = append(r.out, b...)
	return len(b), nil
}

// takeOut returns the handshake's ciphertext not yet posted and forgets it
// (handshake goroutine).
func (r *recordConn) takeOut() []byte {
	p := r.out
	r.out = nil
	return p
}

// postOut posts the handshake's ciphertext written so far to the loop
// (handshake goroutine; posts keep their order).
func (r *recordConn) postOut() {
	p := r.takeOut()
	if len(p) == 0 {
		return
	}
	ec := r.ec
	ec.Loop().Post(func() {
		if !ec.Closed() {
			ec.Write(p)
		}
	})
}

// Close does nothing: the engine connection is closed by the terminator.
func (r *recordConn) Close() error { return nil }

// LocalAddr returns the connection's local address.
func (r *recordConn) LocalAddr() net.Addr { return r.local }

// RemoteAddr returns the client's address.
func (r *recordConn) RemoteAddr() net.Addr { return r.remote }

// SetDeadline does nothing: the loop's timers bound the handshake and the
// connection.
func (r *recordConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline does nothing (see SetDeadline).
func (r *recordConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline does nothing (see SetDeadline).
func (r *recordConn) SetWriteDeadline(time.Time) error { return nil }
