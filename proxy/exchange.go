package proxy

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/l4"
	"github.com/gale-server/gale/lb"
	"github.com/gale-server/gale/server"
)

// continueWait is how long a request with "Expect: 100-continue" waits for the
// upstream's 100 before its body is sent anyway (RFC 9110 §10.1.1).
const continueWait = time.Second

// Failure causes, for log lines and for choosing the status.
var (
	errHeaderTimeout  = errors.New("proxy: no response head within timeouts.response_header")
	errReadTimeout    = errors.New("proxy: no response bytes within timeouts.read")
	errUpstreamClosed = errors.New("proxy: upstream closed the connection")
	errNoServer       = errors.New("proxy: no server available")
	errBadUpgrade     = errors.New("proxy: upstream switched protocols without being asked")
	errWrongUpgrade   = errors.New("proxy: upstream switched to a protocol other than websocket")
	errCut            = errors.New("proxy: response cut by the upstream")
)

// Handler is the proxy route action: a server.Handler that forwards every request to
// its upstream. It is immutable and shared by every loop.
type Handler struct {
	u        *Upstream
	src      *Source // when set, the upstream of each request is src's current one
	r        Route
	setNames []string // names of r.SetHeaders
	setOwn   ownField // the fields gale writes itself that r.SetHeaders replaces
	setHost  string   // the Host of r.SetHeaders, sent first as gale's own would be

	tunOnce sync.Once   // makes tun on the first plain WebSocket tunnel
	tun     *l4.Tunnels // relays plain tunnels (splicing bulk flows); nil before
}

var _ server.Handler = (*Handler)(nil)

// New returns the proxy action forwarding to u with the rewriting of r.
func New(u *Upstream, r Route) *Handler {
	h := &Handler{u: u, r: r}
	for _, kv := range r.SetHeaders {
		h.setNames = append(h.setNames, kv[0])
		for i, n := range ownFields {
			if http1.EqualFold(kv[0], n) {
				h.setOwn |= 1 << i
			}
		}
		if http1.EqualFold(kv[0], "host") {
			h.setHost = kv[1]
		}
	}
	return h
}

// exchange is one proxied request. Owned by the client connection's loop, which is
// the loop of its upstream connection too.
type exchange struct {
	h     *Handler
	c     clientSide     // the client side: hc, or an HTTP/2 stream
	hc    *server.Ctx    // the HTTP/1.1 client; nil for an HTTP/2 stream
	req   *http1.Request // the client's request (synthesized for HTTP/2, see h2.go)
	ls    *loopState
	up    *upConn // the current attempt's connection; nil between attempts and after
	timer *engine.Timer

	tries       int
	tried       uint64 // servers tried, by index
	srv         int
	lbr         lb.Request // the balancer's view of this request, reused by every attempt
	trackedAt   time.Time  // loop time the tracked attempt started
	tracked     bool       // the balancer was told of this attempt's start and not yet of its end
	isHead      bool
	hasBody     bool
	chunked     bool
	idempotent  bool
	expect      bool // forward Expect: 100-continue and wait for the 100
	tunnel      bool // a WebSocket upgrade
	bodyAsked   bool // OnBody was called
	bodySent    bool // request body bytes went upstream (the request cannot be replayed)
	bodyPaused  bool // the client's body is paused for upstream backpressure
	reqSent     bool // the whole request was queued upstream
	gotByte     bool // this attempt received a response byte
	respStarted bool // the response head went to the client
	staleRetry  bool // the one free retry of a pooled connection that failed was used
	done        bool
	upStart     time.Time // when the current attempt began, for the upstream time in logs
	hx          healthAttempt
	// lastStatus and lastCause are the answer to the failed attempt a retry
	// follows: when the retry finds no server, the client gets that failure, as
	// from nginx, and the log names it, not a 503 for servers nobody picked.
	lastStatus int
	lastCause  error
}

// ServeGale forwards the request. It returns at once; the response is completed on
// the loop as the upstream answers.
func (h *Handler) ServeGale(c *server.Ctx) {
	c.Detach()
	h.serve(c, c, c.Request())
}

// serve forwards req from client c (hc, the same client when it is HTTP/1.1).
func (h *Handler) serve(c clientSide, hc *server.Ctx, req *http1.Request) {
	id := c.Loop().ID()
	u := h.u
	if h.src != nil {
		u = h.src.Upstream()
	}
	if id >= len(u.loops) {
		c.Error(500, "proxy: more loops than the upstream was built for")
		return
	}
	x := &exchange{h: h, c: c, hc: hc, req: req, ls: u.loops[id]}
	x.lbr.Loop, x.lbr.Skip = id, u.opts.Skip
	if u.keyed {
		var ok bool
		if x.lbr.Key, ok = requestKey(u.opts.HashKey, req, c.RemoteAddr()); !ok {
			x.lbr.Key = x.ls.keylessKey()
		}
	}
	m := string(req.Method)
	x.isHead = m == "HEAD"
	x.hasBody = req.Chunked || req.ContentLength > 0
	x.chunked = req.Chunked
	x.idempotent = m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE"
	x.expect = req.Expect100 && x.hasBody
	x.tunnel = hc != nil && wantsWebSocket(req)
	x.reqSent = !x.hasBody
	c.OnClose(x.clientClosed)
	if hc != nil {
		// A body the server cannot receive (malformed, over the limit, stopped
		// arriving) is answered by the server itself (400, 413, 408): the
		// upstream connection, which has the request's start and waits for the
		// rest, is abandoned as for a client that left. Nothing else would end
		// it: no timer runs while the body is being sent.
		hc.OnBodyError(x.clientClosed)
	}
	if !h.r.IgnoreClientHalfClose {
		c.OnPeerEOF(x.clientLeft)
	}
	x.ls.earn()
	x.attempt(false)
}

// wantsWebSocket reports a WebSocket upgrade request that may be tunnelled: GET, no
// body, Connection: upgrade and Upgrade naming websocket and not h2c (an h2c upgrade
// through a proxy is a known smuggling path, so it is never forwarded).
func wantsWebSocket(req *http1.Request) bool {
	return req.Upgrade && string(req.Method) == "GET" && !req.Chunked && req.ContentLength <= 0 &&
		req.HasToken("upgrade", "websocket") && !req.HasToken("upgrade", "h2c")
}

// attempt sends the request on a connection to the next server (the same server on
// a fresh connection when fresh is set).
func (x *exchange) attempt(fresh bool) {
	ls := x.ls
	if fresh && !x.readmit() {
		fresh = false // the server may take no more now: the next one
	}
	if !fresh {
		srv, err := x.pickHealthy()
		if srv < 0 && x.lastCause != nil {
			// A retry without a server left (the failure ejected the server, opened
			// its breaker, or it was the only one): the failed attempt's answer.
			x.fail(x.lastStatus, x.lastCause)
			return
		}
		if srv < 0 {
			x.unavailable(err)
			return
		}
		x.srv = srv
		x.tried |= 1 << srv
		// The keep-alive race's fresh connection (fresh) is the failed attempt's
		// own try again, as nginx gives a failed cached connection its try back:
		// counted, it left a request whose server then refused no try for the
		// next server.
		x.tries++
	}
	x.trackStart()
	var uc *upConn
	if !fresh {
		uc = ls.take(x.srv)
	}
	if uc != nil {
		ls.reused.Add(1)
	} else {
		var err error
		if uc, err = ls.dial(x.c.Loop(), x.srv); err != nil {
			x.upstreamFailed(nil, err)
			return
		}
	}
	ls.requests.Add(1)
	x.upStart = time.Now()
	uc.x = x
	uc.requests++
	uc.parser.Reset()
	x.up = uc
	x.gotByte = false
	sc := ls.scratch()
	head := x.h.buildHead(sc[:0], x, x.srv)
	uc.out.Write(head)
	ls.keep(head)
	x.armHeaderTimeout()
	if uc.open {
		x.connected()
	} else if x.bodyAsked && !x.bodyPaused {
		// A retry of a request whose body had not started: it waits for this
		// connection as the first attempt's did.
		x.bodyPaused = true
		x.c.PauseBody()
	}
}

// connected starts the request body once the attempt's connection is established
// (at once on a pooled one; for a new one when its connect, and TLS handshake,
// completed). Until then the body stays with the client, so a connect that fails
// has sent nothing and the request, whatever its method, may go to another server.
func (x *exchange) connected() {
	switch {
	case !x.hasBody || x.done:
	case x.bodyAsked:
		if x.bodyPaused && x.up.out.Buffered() <= highWater {
			x.bodyPaused = false
			x.c.ResumeBody()
		}
	case x.expect:
		if x.timer == nil {
			x.timer = x.c.Loop().AfterFunc(continueWait, x.askBody)
		}
	default:
		x.askBody()
	}
}

// askBody starts streaming the client's body upstream (sending the client its 100
// Continue when it asked for one).
func (x *exchange) askBody() {
	if x.bodyAsked || x.done {
		return
	}
	x.bodyAsked = true
	if x.timer != nil {
		x.timer.Stop()
	}
	x.c.OnBody(x.onBody)
}

// onBody relays one piece of the client's body (re-framed: chunks stay chunks, a
// Content-Length body is copied as is), pausing the client above the high-water mark
// of the upstream connection.
func (x *exchange) onBody(p []byte, end bool) {
	uc := x.up
	if uc == nil || x.done {
		return
	}
	if end {
		if x.chunked {
			sc := x.ls.scratch()
			b := http1.AppendLastChunk(sc[:0], x.requestTrailers())
			uc.out.Write(b)
			x.ls.keep(b)
		}
		x.reqSent = true
		x.armHeaderTimeout()
		return
	}
	if len(p) == 0 {
		return
	}
	x.bodySent = true
	if x.chunked {
		var b [20]byte
		uc.out.Write(http1.AppendChunkHeader(b[:0], len(p)))
		uc.out.Write(p)
		uc.out.Write(crlf)
	} else {
		uc.out.Write(p)
	}
	if uc.out.Buffered() > highWater && !x.bodyPaused {
		x.bodyPaused = true
		x.c.PauseBody()
		uc.out.WantDrain()
	}
}

// armHeaderTimeout starts timeouts.response_header once the whole request has gone
// to a connected upstream and no response has started: the wait for a head runs from
// the end of the request, however long a large or slow upload took (its progress is
// bounded by timeouts.write meanwhile).
func (x *exchange) armHeaderTimeout() {
	uc := x.up
	if uc == nil || !uc.open || uc.inBody || x.respStarted {
		return
	}
	if x.reqSent {
		uc.ec.SetTimeout(x.ls.u.opts.Timeouts.ResponseHeader)
	} else {
		uc.ec.CancelTimeout()
	}
}

var crlf = []byte("\r\n")

// onUpstreamData parses and relays what the upstream sent, and acts on a FIN that
// came behind bytes it had left unconsumed once they are all relayed.
func (x *exchange) onUpstreamData(uc *upConn, in []byte) int {
	n := x.relayResponse(uc, in)
	if x.up != uc {
		return n // the exchange ended, or failed, with these bytes
	}
	uc.held = n < len(in)
	if uc.peerEOF && !uc.held {
		x.upstreamEOF(uc)
	}
	return n
}

// relayResponse parses and relays what the upstream sent, returning how much of in
// it consumed: less when the response head is incomplete or when the client's
// output passed the high-water mark.
func (x *exchange) relayResponse(uc *upConn, in []byte) int {
	if len(in) > 0 {
		x.gotByte = true
	}
	off := 0
	for off < len(in) {
		if !uc.inBody {
			n, err := uc.parser.Parse(in[off:], &uc.resp)
			if err == http1.ErrNeedMore {
				return off
			}
			if err != nil {
				x.upstreamFailed(uc, err)
				return len(in)
			}
			off += n
			r := &uc.resp
			if r.Status == 101 {
				if !x.tunnel {
					x.upstreamFailed(uc, errBadUpgrade)
					return len(in)
				}
				if !r.HasToken("upgrade", "websocket") {
					// The client would speak WebSocket to another protocol (RFC 9110
					// §15.2.2: the 101's Upgrade names what the connection switched to).
					x.upstreamFailed(uc, errWrongUpgrade)
					return len(in)
				}
				x.startTunnel(uc)
				return off
			}
			if r.Informational() {
				x.interim(r)
				continue
			}
			x.startResponse(uc)
			if x.done {
				return len(in)
			}
			uc.body.InitResponse(r, x.isHead)
			uc.inBody = true
		}
		data, used, done, err := uc.body.Next(in[off:])
		off += used
		if len(data) > 0 {
			if _, werr := x.c.Write(data); werr != nil && !errors.Is(werr, server.ErrBodyTooLong) {
				x.upstreamFailed(uc, werr)
				return len(in)
			}
		}
		if err != nil {
			x.upstreamFailed(uc, err)
			return len(in)
		}
		if done {
			keep := off == len(in) && !uc.peerEOF
			x.finishResponse(uc, keep)
			return len(in)
		}
		if used == 0 {
			break
		}
		if x.c.Buffered() > highWater {
			uc.ec.PauseRead()
			x.c.OnDrain(func() {
				if x.up == uc {
					uc.out.ResumeRead()
				}
			})
			break
		}
	}
	if uc.inBody {
		uc.ec.SetTimeout(x.ls.u.opts.Timeouts.Read)
	}
	return off
}

// interim handles a 1xx response: 100 releases a body held for it, 103 goes to the
// client, others are dropped.
func (x *exchange) interim(r *http1.Response) {
	switch r.Status {
	case 100:
		if x.expect {
			x.askBody()
		}
	case 103:
		var h server.Header
		conns := connectionFields(r.Headers)
		for _, f := range r.Headers {
			if !hopByHop(f.Name, conns) {
				h.Add(string(f.Name), string(f.Value))
			}
		}
		x.c.WriteInformational(103, &h)
	}
}

// startResponse sends the response head to the client.
func (x *exchange) startResponse(uc *upConn) {
	r := &uc.resp
	c := x.c
	if c.Closed() {
		x.upstreamFailed(uc, server.ErrConnClosed)
		return
	}
	c.Header().AppendRaw(x.h.responseFields(x.ls.scratch()[:0], r))
	if !r.Chunked && r.ContentLength >= 0 {
		c.SetContentLength(r.ContentLength)
	}
	x.respStarted = true
	c.SetUpstream(x.ls.u.opts.Servers[x.srv].Addr, time.Since(x.upStart))
	c.WriteHeader(r.Status)
	uc.ec.SetTimeout(x.ls.u.opts.Timeouts.Read)
}

// finishResponse completes the client's response once the upstream's has ended, and
// pools the upstream connection when it can carry another request.
func (x *exchange) finishResponse(uc *upConn, keep bool) {
	r := &uc.resp
	keep = keep && r.KeepAlive && x.reqSent && !uc.body.UntilClose()
	for _, t := range uc.body.Trailers() {
		x.c.Trailer().Add(string(t.Name), string(t.Value))
	}
	x.endAttempt(r.Status, health.Succeeded)
	x.finish()
	uc.release(keep)
	x.c.SetUpstream(x.ls.u.opts.Servers[x.srv].Addr, time.Since(x.upStart))
	x.c.End()
}

// finish marks the exchange over and detaches it from its connection and timer.
func (x *exchange) finish() {
	x.endAttempt(0, health.Cancelled)
	x.done = true
	x.trackDone(false)
	if x.timer != nil {
		x.timer.Stop()
	}
	x.up = nil
}

// upstreamFailed handles a failed attempt: retried when safe, else answered 502, 503
// or 504, or, once the response has started, cut.
func (x *exchange) upstreamFailed(uc *upConn, cause error) {
	if x.done {
		return
	}
	reused := false
	if uc != nil {
		reused = uc.requests > 1
		uc.x = nil
		uc.drop()
		if !uc.ec.Closed() {
			uc.ec.Close(cause)
		}
	}
	x.up = nil
	if x.respStarted {
		x.settle(health.Failed)
		x.log(0, cause)
		x.finish()
		x.ls.failures.Add(1)
		// What arrived goes out, then the connection closes without completing the
		// framing: the client sees a truncated response, never a wrong one.
		x.cut()
		return
	}
	var de *engine.DialError
	connectFailed := errors.As(cause, &de)
	beforeReply := !x.gotByte && !connectFailed && isReset(cause)
	ro := x.ls.u.opts.Retries
	status := 502
	if connectFailed && de.Timeout() || cause == errHeaderTimeout || errors.Is(cause, engine.ErrWriteTimeout) {
		status = 504
	}
	switch {
	case x.c.Closed() || x.bodySent:
		// Body bytes went upstream and are not kept: the request cannot be sent again.
	case beforeReply && reused && !x.staleRetry && x.idempotent:
		// A pooled connection the origin closed as we sent: the classic keep-alive
		// race. One retry on a fresh connection to the same server, outside the budget.
		x.settle(health.Cancelled)
		x.staleRetry = true
		x.ls.retries.Add(1)
		x.attempt(true)
		return
	case x.tries < ro.Tries &&
		// A failed connect sent nothing, so any request may go elsewhere; an
		// origin whose connection ended before the response may have acted on
		// the request, so only an idempotent one is sent again: "a proxy MUST NOT
		// automatically retry non-idempotent requests" (RFC 9110 §9.2.2).
		(connectFailed && ro.ConnectFailure || beforeReply && ro.ResetBeforeReply && x.idempotent) &&
		// A refused connect made no origin do any work, so it does not spend the
		// budget, which keeps retries from multiplying the load of origins that
		// are failing: a server that is down costs no failed requests then.
		(connectFailed && errors.Is(cause, syscall.ECONNREFUSED) || x.ls.spend()):
		x.settle(health.Failed)
		x.ls.retries.Add(1)
		x.lastStatus, x.lastCause = status, cause
		x.attempt(false)
		return
	}
	if x.c.Closed() {
		x.settle(health.Cancelled)
	} else {
		x.settle(health.Failed)
	}
	x.fail(status, cause)
}

// settle ends the failed attempt with outcome o for the health group and the
// balancer alike: a cancelled attempt (the keep-alive race, a client that left)
// is no failure for p2c_ewma either, whose cost it raised to at least
// lb.FailurePenalty.
func (x *exchange) settle(o health.Outcome) {
	x.trackDone(o == health.Failed)
	x.endAttempt(0, o)
}

// isReset reports a connection that ended without a (complete) response: closed,
// reset or refused while the request was sent, as opposed to a protocol error or a
// timeout.
func isReset(err error) bool {
	var he *http1.Error
	if errors.As(err, &he) || err == errHeaderTimeout || err == errReadTimeout || err == errBadUpgrade || err == errWrongUpgrade ||
		errors.Is(err, engine.ErrWriteTimeout) {
		return false
	}
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// fail answers the client with status and logs the cause.
func (x *exchange) fail(status int, cause error) {
	x.log(status, cause)
	x.finish()
	x.ls.failures.Add(1)
	if !x.c.Closed() {
		x.c.Error(status, "")
	}
}

func (x *exchange) log(status int, cause error) {
	req := x.req
	srv := "none" // no server was chosen for the request
	if x.tries > 0 {
		srv = x.ls.u.hosts[x.srv]
	}
	x.ls.u.opts.Logger.Warn("proxy: upstream request failed",
		"upstream", x.ls.u.opts.Name, "server", srv, "status", status,
		"cause", cause.Error(), "method", string(req.Method), "target", string(req.Target), "tries", x.tries)
}

// abandoned reports, and settles, an exchange whose client response the server ended
// by itself before the upstream answered (a malformed request body answered 400, the
// server's response timeout): the upstream connection is then closed unused.
func (x *exchange) abandoned(uc *upConn) bool {
	if x.done || x.respStarted || !x.c.Ended() {
		return false
	}
	x.finish()
	uc.x = nil
	return true
}

// clientClosed runs when the client connection closes (or its HTTP/2 stream is
// reset) before the response ended: the upstream request is abandoned, and its
// connection, mid-exchange, is closed rather than pooled.
func (x *exchange) clientClosed(error) {
	if x.done {
		return
	}
	uc := x.up
	x.finish()
	if uc != nil {
		uc.x = nil
		uc.drop()
		uc.ec.Close(nil)
	}
}

// clientLeft runs when the client half-closes its connection (a FIN) while the
// upstream is still answering. As nginx does by default (proxy_ignore_client_abort
// off), the request is abandoned: the upstream connection is closed, and the
// client's side ends at once, an HTTP/1.1 connection closed, an HTTP/2 stream
// reset with CANCEL. The access log and metrics then record 499 when no response byte had
// gone to the client, else the status it was sent.
func (x *exchange) clientLeft() {
	if x.done {
		return
	}
	x.clientClosed(nil)
	if x.hc != nil {
		x.hc.Conn().Close(nil)
	} else if s, ok := x.c.(h2client); ok {
		s.Cancel()
	}
}
