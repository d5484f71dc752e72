package proxy

import (
	"errors"
	"io"
	"sync/atomic"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/server"
)

// highWater is the queued output above which a relay stops reading from the other
// side of the pair; it resumes when the engine reports the low-water mark (OnDrain).
const highWater = 256 << 10

// Budget bounds for retries: every request earns Retries.Budget tokens, up to
// budgetFloor plus budgetSpan times the budget; a retry spends one. A loop starts
// with budgetFloor tokens.
const (
	budgetFloor = 10
	budgetSpan  = 100
)

// loopState is one upstream's state on one loop: the idle connections per server and
// the retry budget. Owned by that loop, except the counters, which any goroutine
// may read.
type loopState struct {
	u      *Upstream
	idle   [][]*upConn // per server; the most recently used last
	tokens float64
	// keyless counts the requests without a value for hash_key (keylessKey).
	keyless uint64
	buf     []byte // scratch for request heads and fields
	// draining is set once the engine started shutting down: nothing is pooled.
	draining bool

	requests, dials, reused, retries, failures atomic.Uint64
	idleConns                                  atomic.Int64
}

func newLoopState(u *Upstream) *loopState {
	return &loopState{u: u, idle: make([][]*upConn, len(u.opts.Servers)), tokens: budgetFloor}
}

// earn adds one request's share to the retry budget.
func (ls *loopState) earn() {
	b := ls.u.opts.Retries.Budget
	ls.tokens = min(ls.tokens+b, budgetFloor+budgetSpan*b)
}

// spend takes one retry from the budget, reporting whether there was one.
func (ls *loopState) spend() bool {
	if ls.tokens < 1 {
		return false
	}
	ls.tokens--
	return true
}

// upConn is one connection to an upstream server. Owned by its loop. The response
// parser and body reader live here so that their buffers are reused by every
// request the connection carries.
type upConn struct {
	ls       *loopState
	ec       *engine.Conn
	out      upStream  // where request bytes go: ec, or the TLS layer of an https upstream
	x        *exchange // the request in flight; nil while idle
	srv      int
	requests int  // requests sent on this connection
	open     bool // connected (OnOpen ran)
	idle     bool // in ls.idle[srv]
	inBody   bool // the response head was forwarded; the body is being read
	// peerEOF: the server half-closed while bytes of its body that came before the
	// FIN were still unconsumed (the proxy paused for the client); the FIN is acted
	// on once they are relayed (OnEOF, onUpstreamData).
	peerEOF bool
	// held: the last OnData left bytes unconsumed, which the engine (or the TLS
	// layer) passes again when reading resumes.
	held   bool
	parser http1.ResponseParser
	resp   http1.Response
	body   http1.BodyReader
}

// upStream is what the proxy writes requests to and resumes reading on: the
// engine connection itself, or a tlsterm.Dialer's layer over it.
type upStream interface {
	server.Stream
	ResumeRead()
}

var _ upStream = (*engine.Conn)(nil)

// take returns an idle connection to server srv (adopted from the upstream this
// one replaced when its own pool has none), or nil.
func (ls *loopState) take(srv int) *upConn {
	if uc := ls.popIdle(srv); uc != nil {
		return uc
	}
	return ls.adopt(srv)
}

// popIdle removes and returns the most recent open idle connection to srv.
func (ls *loopState) popIdle(srv int) *upConn {
	list := ls.idle[srv]
	for len(list) > 0 {
		uc := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		uc.idle = false
		ls.idleConns.Add(-1)
		ls.pooled(srv, false)
		if !uc.ec.Closed() {
			ls.idle[srv] = list
			return uc
		}
	}
	ls.idle[srv] = list
	return nil
}

// dial opens a new connection to server srv.
func (ls *loopState) dial(l *engine.Loop, srv int) (*upConn, error) {
	uc := &upConn{ls: ls, srv: srv}
	addr, timeout := ls.u.opts.Servers[srv].Addr, ls.u.opts.Timeouts.Connect
	if d := ls.u.dialer; d != nil {
		ec, layer, err := d.Dial(l, addr, timeout, upstreamHandler)
		if err != nil {
			return nil, err
		}
		uc.ec, uc.out = ec, layer
	} else {
		ec, err := l.Dial(addr, timeout, upstreamHandler)
		if err != nil {
			return nil, err
		}
		uc.ec, uc.out = ec, ec
	}
	ec := uc.ec
	ec.SetContext(uc)
	// The request body queued for the origin must not stop the reading of its
	// answer: an origin may answer before it has read the whole upload (401, 413,
	// a redirect) and then wait, or close. The proxy paces the body itself (it
	// pauses the client above highWater, onBody), as a relay paces its source.
	ec.SetOutputPausesRead(false)
	ls.connDialing(srv)
	ec.SetWriteTimeout(ls.u.opts.Timeouts.Write)
	ls.dials.Add(1)
	return uc, nil
}

// release ends the connection's current exchange: back to the pool when keep holds
// and the pool has room, else closed.
func (uc *upConn) release(keep bool) {
	uc.x = nil
	uc.inBody = false
	uc.held, uc.peerEOF = false, false
	ls := uc.ls
	k := ls.u.opts.Keepalive
	if !keep || ls.draining || uc.ec.Closed() || uc.requests >= k.MaxRequests || len(ls.idle[uc.srv]) >= k.Idle {
		uc.closeOrderly()
		return
	}
	uc.idle = true
	ls.idleConns.Add(1)
	ls.pooled(uc.srv, true)
	ls.idle[uc.srv] = append(ls.idle[uc.srv], uc)
	uc.ec.SetTimeout(k.IdleTimeout)
	uc.out.ResumeRead()
}

// closeOrderly closes a connection the proxy is done with (its exchange ended,
// or it was idle): to an https upstream the close_notify alert goes first,
// as RFC 8446 §6.1 requires and nginx's ngx_ssl_shutdown does, instead of a
// bare FIN the origin sees as a truncated connection. The engine sends it,
// then closes without waiting for the origin's.
func (uc *upConn) closeOrderly() {
	ec := uc.ec
	if n, ok := uc.out.(interface{ CloseNotify() }); ok && !ec.Closed() {
		n.CloseNotify()
		ec.CloseAfterFlush(false)
		return
	}
	ec.Close(nil)
}

// lastRequest reports that the connection closes after the request it carries
// (counted in requests): the pool keeps none (keepalive.idle 0), it reached
// keepalive.max_requests, or the engine is shutting down.
func (uc *upConn) lastRequest() bool {
	k := uc.ls.u.opts.Keepalive
	return k.Idle <= 0 || uc.requests >= k.MaxRequests || uc.ls.draining
}

// drop removes an idle connection from its pool.
func (uc *upConn) drop() {
	if !uc.idle {
		return
	}
	uc.idle = false
	uc.ls.idleConns.Add(-1)
	uc.ls.pooled(uc.srv, false)
	list := uc.ls.idle[uc.srv]
	for i, c := range list {
		if c == uc {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			uc.ls.idle[uc.srv] = list[:len(list)-1]
			return
		}
	}
}

// upHandler is the engine.Handler of every upstream connection; the connection's
// context is its *upConn.
type upHandler struct{ engine.NopHandler }

var upstreamHandler engine.Handler = &upHandler{}

// errIdleData is the close reason of an idle upstream connection that sent bytes no
// request asked for.
var errIdleData = errors.New("proxy: upstream sent data on an idle connection")

func (*upHandler) OnOpen(ec *engine.Conn) {
	uc := ec.Context().(*upConn)
	uc.connOpened()
	uc.open = true
	if uc.x != nil {
		uc.x.armHeaderTimeout()
		uc.x.connected()
	} else {
		ec.Close(nil)
	}
}

func (*upHandler) OnData(ec *engine.Conn, in []byte) int {
	uc := ec.Context().(*upConn)
	if uc.x == nil || uc.x.abandoned(uc) {
		uc.drop()
		ec.Close(errIdleData)
		return len(in)
	}
	return uc.x.onUpstreamData(uc, in)
}

func (*upHandler) OnEOF(ec *engine.Conn) {
	uc := ec.Context().(*upConn)
	x := uc.x
	if x == nil {
		uc.drop()
		ec.Close(nil)
		return
	}
	if uc.inBody && uc.held {
		// The engines report the FIN after every byte sent before it has been passed
		// to OnData, but the proxy may not have consumed them all: it stops midway
		// when the client's output passes the high-water mark (an origin that closes
		// after its response, behind a client slower than it). Those bytes come
		// before the end of the body: the FIN is acted on once they are relayed
		// (onUpstreamData), or a close-delimited body would lose them.
		uc.peerEOF = true
		return
	}
	x.upstreamEOF(uc)
}

// upstreamEOF acts on the origin's FIN once every byte before it was relayed: it
// ends a close-delimited body, and cuts any other response it came inside.
func (x *exchange) upstreamEOF(uc *upConn) {
	if uc.inBody && uc.body.UntilClose() {
		x.finishResponse(uc, false)
		return
	}
	x.upstreamFailed(uc, io.ErrUnexpectedEOF)
}

func (*upHandler) OnDrain(ec *engine.Conn) {
	uc := ec.Context().(*upConn)
	if x := uc.x; x != nil && x.bodyPaused {
		x.bodyPaused = false
		x.c.ResumeBody()
	}
}

func (*upHandler) OnTimeout(ec *engine.Conn) {
	uc := ec.Context().(*upConn)
	if uc.x == nil || uc.x.abandoned(uc) {
		uc.drop()
		uc.closeOrderly() // the keep-alive idle timeout
		return
	}
	if uc.inBody {
		uc.x.upstreamFailed(uc, errReadTimeout)
	} else {
		uc.x.upstreamFailed(uc, errHeaderTimeout)
	}
}

func (*upHandler) OnShutdown(ec *engine.Conn) {
	uc := ec.Context().(*upConn)
	// The engine is shutting down: connections busy now close after their response
	// instead of waiting in the pool until the grace period ends.
	uc.ls.draining = true
	if uc.x == nil || uc.x.abandoned(uc) {
		uc.drop()
		uc.closeOrderly()
	}
}

func (*upHandler) OnClose(ec *engine.Conn, err error) {
	uc := ec.Context().(*upConn)
	uc.connClosed()
	uc.drop()
	if x := uc.x; x != nil {
		if err == nil {
			err = errUpstreamClosed
		}
		x.upstreamFailed(uc, err)
	}
}

// scratch returns the loop's buffer for building heads; keep stores it back once
// grown. Engine writes copy, so the buffer is free again after each write.
func (ls *loopState) scratch() []byte { return ls.buf }

func (ls *loopState) keep(b []byte) { ls.buf = b[:0] }
