package l4

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/l4proto"
	"github.com/gale-server/gale/lb"
)

// Relay states.
const (
	stPreamble   uint8 = iota // reading the PROXY header and/or ClientHello
	stConnecting              // dialing an upstream server; client reads paused
	stRelaying                // both connections open, bytes moving
	stDone                    // closing: no more callbacks act
)

// pair is one relayed connection: the client (down) and upstream (up) sides and
// the two directions between them. It is the context of both connections and is
// owned by their loop (an upstream is dialed on the client's loop).
type pair struct {
	px       *Proxy
	down     *engine.Conn
	up       *engine.Conn // nil until dialed
	bal      Balancer
	lbr      lb.Request // what the balancer knows of this connection
	srv      int        // index of the server dialed last
	tracked  bool       // the balancer was told of a start on srv and not yet of its end
	dialAt   time.Time  // loop time the last connect started
	connRTT  time.Duration
	tries    int         // connects started
	dialErr  error       // why each connect failed, joined (logged when every one did)
	hl       relayHealth // the group's health bookkeeping (health.go)
	client   netip.AddrPort
	local    netip.AddrPort
	early    []byte // client bytes read before the upstream connected
	state    uint8
	proxy    bool                 // waiting for a PROXY header (trusted source)
	sni      bool                 // waiting for a ClientHello
	hello    *l4proto.HelloReader // reads it as it arrives (while sni)
	eofEarly bool                 // the client's FIN came while the upstream was connecting
	heard    bool                 // the client sent preamble bytes (stPreamble)
	dirs     [2]dir
	last     time.Time // loop time of the last byte moved
	acked    [2]uint64 // delivery of down and up at the last idle check (checkIdle)
	idle     *engine.Timer
}

// dir is one direction of a relay: bytes read from src are queued on dst.
type dir struct {
	p        *pair
	src, dst *engine.Conn
	moved    int64 // bytes relayed, both ways of moving
	bulk     int64 // bytes of the current run of reads of at least bulkRead bytes
	eof      bool  // src has sent everything (FIN read)
	shut     bool  // dst's sending side is shut (the FIN passed on)
	held     bool  // src paused until dst drains (copy mode)
	noSplice bool  // read notification was refused; stay on the copy path
	splice         // the splice state (splice_linux.go)
}

// errUpstream is the reason a client is reset when no upstream server connected.
var errUpstream = errors.New("l4: every upstream server failed")

// downHandler serves client connections; upHandler serves upstream connections.
// Both are comparable values the engine keys its handler table on.
type downHandler struct{ px *Proxy }
type upHandler struct{ px *Proxy }

var (
	_ engine.Handler           = (*downHandler)(nil)
	_ engine.Handler           = (*upHandler)(nil)
	_ engine.FlushHandler      = (*downHandler)(nil)
	_ engine.FlushHandler      = (*upHandler)(nil)
	_ engine.ReadNotifyHandler = (*downHandler)(nil)
	_ engine.ReadNotifyHandler = (*upHandler)(nil)
)

// OnOpen starts a relay for an accepted client.
func (h *downHandler) OnOpen(c *engine.Conn) {
	px := h.px
	px.stats.accepted.Add(1)
	if n := px.stats.active.Add(1); px.opt.MaxConns > 0 && n > int64(px.opt.MaxConns) {
		px.stats.overLimit.Add(1)
		c.Close(nil) // OnClose takes the count back
		return
	}
	p := &pair{px: px, down: c, client: c.RemoteAddr(), last: c.Loop().Now()}
	c.SetContext(p)
	c.SetOutputPausesRead(false) // each direction paces its own source (dir.copy)
	p.proxy = len(px.opt.AcceptProxy) > 0 && px.trusted(p.client.Addr())
	p.sni = px.routes != nil
	if p.proxy || p.sni {
		c.SetTimeout(px.opt.PreambleTimeout)
		return
	}
	p.bal = px.opt.Upstreams
	p.connect()
}

// OnData reads the preamble, then relays client bytes upstream.
func (h *downHandler) OnData(c *engine.Conn, in []byte) int {
	p, ok := c.Context().(*pair)
	if !ok {
		return len(in)
	}
	switch p.state {
	case stPreamble:
		return p.preamble(in)
	case stRelaying:
		p.dirs[0].copy(in)
		return len(in)
	}
	return len(in)
}

// preamble reads the PROXY header (trusted sources) and the ClientHello (SNI
// routing), then connects. It returns the bytes consumed.
func (p *pair) preamble(in []byte) int {
	px := p.px
	used := 0
	p.heard = p.heard || len(in) > 0
	if p.proxy {
		h, n, err := l4proto.ParseProxy(in)
		switch {
		case err != nil:
			px.stats.badProxy.Add(1)
			px.opt.Logger.Warn("tcp: closing a connection with a bad PROXY header", "peer", p.client, "err", err)
			p.down.Close(err)
			return len(in)
		case n == 0:
			return 0
		}
		p.proxy = false
		if !h.Unknown {
			p.client, p.local = h.Src, h.Dst
		}
		used = n
		in = in[n:]
	}
	if p.sni {
		if p.hello == nil {
			p.hello = new(l4proto.HelloReader)
		}
		// The hello's bytes are kept in early as they arrive, and the reader
		// walks only the new ones: a hello trickled in many small records and
		// reads costs time linear in its size. (Left to the engine, which copies
		// all it holds for a handler again on every read, and parsed from its
		// start each time, it cost time quadratic in it.) Its size is bounded by
		// the reader: at most MaxClientHello of message, in records of at least
		// one byte each.
		p.early = append(p.early, in...)
		name, done, err := p.hello.Read(p.early)
		switch {
		case err != nil:
			px.stats.badHello.Add(1)
			px.opt.Logger.Warn("tcp: closing a connection without a valid TLS ClientHello", "client", p.client, "err", err)
			p.down.Close(err)
			return used + len(in)
		case !done:
			return used + len(in)
		}
		p.hello = nil
		if p.bal = px.routes.match(name); p.bal == nil {
			px.stats.noRoute.Add(1)
			px.opt.Logger.Warn("tcp: closing a TLS connection with no route for its server name", "client", p.client, "sni", name)
			p.down.Close(nil)
			return used + len(in)
		}
	} else {
		p.bal = px.opt.Upstreams
		p.early = append(p.early, in...)
	}
	p.down.CancelTimeout()
	p.down.PauseRead()
	p.connect()
	return used + len(in)
}

// connect dials the next upstream server of the group, or resets the client
// when each has been tried.
func (p *pair) connect() {
	p.state = stConnecting
	servers := p.bal.Servers()
	loop := p.down.Loop()
	if p.tries == 0 {
		p.lbr = lb.Request{Loop: loop.ID()}
		if lb.UsesKey(p.bal) {
			p.lbr.Key = lb.HashAddr(p.client.Addr().Unmap())
		}
		p.down.PauseRead()
		p.hl.g = healthOf(p.bal)
	}
	if !p.skipUnavailable(len(servers)) {
		return
	}
	for p.tries < len(servers) {
		p.lbr.Now = loop.Now().UnixNano()
		i := p.bal.Pick(&p.lbr)
		if i < 0 {
			break
		}
		if i < 64 {
			p.lbr.Tried |= 1 << i
		}
		if !p.admit(i) {
			continue // refused by its limits or breaker: marked tried
		}
		p.tries++
		p.srv, p.dialAt = i, loop.Now()
		up, err := loop.Dial(servers[i], p.px.opt.ConnectTimeout, p.px.up)
		if err == nil {
			up.SetContext(p)
			up.SetOutputPausesRead(false)
			p.up = up
			p.trackStart()
			return
		}
		p.dialFailed(err)
		p.connectFailed()
	}
	p.px.stats.upstreamFailed.Add(1)
	// The line names the connects tried and why each failed (the server and the
	// system call's error), as nginx's "connect() failed (111: Connection
	// refused) while connecting to upstream" lines do.
	p.px.opt.Logger.Warn("tcp: every upstream server failed; resetting the client", "client", p.client,
		"tried", p.tries, "err", p.dialErr)
	p.state = stDone
	p.down.Abort(errUpstream)
}

// dialFailed keeps err, the failure of the connect just tried, with those of
// the connects before it.
func (p *pair) dialFailed(err error) {
	if p.dialErr != nil {
		err = fmt.Errorf("%w; %w", p.dialErr, err)
	}
	p.dialErr = err
}

// OnOpen starts relaying once the upstream has connected.
func (h *upHandler) OnOpen(c *engine.Conn) {
	p, ok := c.Context().(*pair)
	if !ok || p.state != stConnecting {
		c.Close(nil)
		return
	}
	p.state = stRelaying
	p.connRTT = c.Loop().Now().Sub(p.dialAt)
	p.upOpened()
	if v := p.px.opt.SendProxy; v != 0 {
		local := p.local
		if !local.IsValid() {
			local = p.down.LocalAddr()
		}
		var hdr []byte
		if v == 1 {
			hdr = l4proto.AppendV1(make([]byte, 0, 64), p.client, local)
		} else {
			hdr = l4proto.AppendV2(make([]byte, 0, 64), p.client, local)
		}
		c.Write(hdr)
	}
	p.dirs[0] = dir{p: p, src: p.down, dst: c}
	p.dirs[1] = dir{p: p, src: c, dst: p.down}
	if len(p.early) > 0 {
		p.dirs[0].copy(p.early)
		p.early = nil
	}
	p.last = c.Loop().Now()
	p.idle = c.Loop().AfterFunc(p.px.opt.IdleTimeout, p.checkIdle)
	if !p.dirs[0].held {
		p.down.ResumeRead()
	}
	if p.eofEarly {
		p.eofFrom(p.down)
	}
}

// OnData relays upstream bytes to the client.
func (h *upHandler) OnData(c *engine.Conn, in []byte) int {
	if p, ok := c.Context().(*pair); ok && p.state == stRelaying {
		p.dirs[1].copy(in)
	}
	return len(in)
}

// loop returns the per-loop state of the pair's loop.
func (p *pair) loop() *perLoop { return &p.px.loops[p.down.Loop().ID()] }

// dirOf returns the direction whose source is c.
func (p *pair) dirOf(c *engine.Conn) *dir {
	if c == p.down {
		return &p.dirs[0]
	}
	return &p.dirs[1]
}

// bulkRead is the smallest read that counts toward SpliceAfter: a direction
// splices once it has read SpliceAfter bytes in a row in reads at least this
// large (a bulk transfer), and a smaller read starts the count again. The
// small messages of an interactive or keep-alive exchange (HTTP requests and
// responses through a relay) therefore stay on the copy path however long the
// connection lives; a bulk sender fills reads of 32 KiB and more.
const bulkRead = 16 << 10

// copy queues in on the destination (copied) and pauses the source when the
// destination's queue passes the high-water mark; a run of large reads past
// SpliceAfter switches the direction to splice.
func (d *dir) copy(in []byte) {
	if len(in) == 0 {
		return
	}
	d.dst.WriteNow(in)
	d.moved += int64(len(in))
	d.p.loop().copied.add(len(in))
	d.p.last = d.src.Loop().Now()
	if d.dst.Buffered() > d.p.px.eng.HighWater() {
		d.held = true
		d.p.px.stats.backpressure.Add(1)
		d.src.PauseRead()
		d.dst.WantDrain()
	}
	if len(in) >= bulkRead || d.p.px.opt.spliceSmall {
		d.bulk += int64(len(in))
	} else {
		d.bulk = 0
	}
	if after := d.p.px.opt.SpliceAfter; after > 0 && d.bulk >= after && !d.noSplice && !d.notify {
		d.startSplice()
	}
}

// drained resumes a source held for backpressure once its destination drained.
func (d *dir) drained() {
	if d.held {
		d.held = false
		d.src.ResumeRead()
	}
}

// srcEOF passes a finished direction on: once everything queued for dst has
// been sent, its sending side is shut (OnFlushed).
func (d *dir) srcEOF() {
	if d.eof {
		return
	}
	d.eof = true
	d.dst.WantFlushed()
}

// flushed shuts dst's sending side after the source's FIN, and ends the relay
// once both directions are shut.
func (d *dir) flushed() {
	if !d.eof || d.shut || d.dst.Pending() {
		return
	}
	d.shut = true
	if err := d.dst.CloseWrite(); err != nil {
		d.p.finish(d.dst, err)
		return
	}
	if d.p.dirs[0].shut && d.p.dirs[1].shut {
		d.p.finish(nil, nil)
	}
}

// eofFrom handles OnEOF of c. The engines report a FIN after every byte sent
// before it was passed to OnData, which the relay consumes whole; a direction
// that splices reads for itself (read notification), so its end is the one its
// own read finds (OnReadable), and switching to read notification here leaves
// that read the one place a direction ends. Where that is refused (the portable
// engine) the direction ends now.
func (p *pair) eofFrom(c *engine.Conn) {
	switch p.state {
	case stRelaying:
		d := p.dirOf(c)
		if d.notify || c.SetReadNotify(true) {
			d.notify = true
			return
		}
		d.srcEOF()
	case stConnecting:
		p.eofEarly = true // passed on once the upstream connects (OnOpen)
	case stPreamble:
		// The client left before its preamble was whole: one that sent nothing
		// (a connect-only health check) is closed quietly, one that ended
		// inside its PROXY header or ClientHello is refused like a bad one.
		if p.heard {
			p.refusePreamble("tcp: closing a connection that ended inside its preamble", io.ErrUnexpectedEOF)
			return
		}
		c.Close(nil)
	}
}

// checkIdle closes a relay in which no byte moved for the idle timeout. A
// relay that read nothing for that long but whose queued bytes are still
// reaching a peer (a slow reader draining what the relay holds for it, while
// its source is paused for backpressure) is not idle: each check samples what
// each peer has acknowledged, and a peer with bytes in flight whose count grew
// since the last check extends the relay by another period. A peer that takes
// nothing at all is given at most one period more than the timeout (when no
// check sampled it before).
//
// Delivery is sampled only by a check that ends a period (left <= 0), so each
// sample is compared with one taken at least a period before. A check that
// finds the relay read recently re-arms for the rest of the period; it used to
// sample too, and the check a tick after it then compared delivery over that
// tick alone: a reader taking bytes every few ticks, not idle at all, was
// closed with a clean FIN in the middle of its stream.
func (p *pair) checkIdle() {
	if p.state != stRelaying {
		return
	}
	now := p.down.Loop().Now()
	left := p.px.opt.IdleTimeout - now.Sub(p.last)
	if left <= 0 && p.delivering() {
		p.last, left = now, p.px.opt.IdleTimeout
	}
	if left > 0 {
		p.idle.Reset(left)
		return
	}
	p.finish(nil, nil)
}

// delivering samples the delivery of both connections and reports whether one
// has bytes in flight to its peer that moved since the last sample.
func (p *pair) delivering() bool {
	moving := false
	for i, c := range [2]*engine.Conn{p.down, p.up} {
		acked, inFlight := delivery(c)
		moving = moving || inFlight && acked != p.acked[i]
		p.acked[i] = acked
	}
	return moving
}

// finish ends the relay: both connections are closed, or, when from failed with
// err (a reset, a write error), the other is reset so the failure shows at its
// peer too.
func (p *pair) finish(from *engine.Conn, err error) {
	if p.state == stDone {
		return
	}
	p.ended(from, err)
	p.state = stDone
	p.trackDone(false)
	if p.idle != nil {
		p.idle.Stop()
	}
	for _, c := range [2]*engine.Conn{p.down, p.up} {
		switch {
		case c == nil || c == from:
		case err != nil:
			c.Abort(err)
		default:
			c.Close(nil)
		}
	}
	if from != nil && !from.Closed() {
		from.Close(err)
	}
	p.dirs[0].releasePipe()
	p.dirs[1].releasePipe()
}

// trackStart tells a tracking balancer that a connection to p.srv began.
func (p *pair) trackStart() {
	if t, ok := p.bal.(lb.Tracker); ok {
		t.Start(p.srv)
		p.tracked = true
	}
}

// trackDone tells it, once, that the connection ended (or its connect
// failed), with the time the connect took.
func (p *pair) trackDone(failed bool) {
	if !p.tracked {
		return
	}
	p.tracked = false
	p.bal.(lb.Tracker).Done(p.srv, p.connRTT, failed)
}

// closed handles OnClose of either side.
func (p *pair) closed(c *engine.Conn, err error) {
	if c == p.up && p.state == stConnecting {
		if _, ok := errors.AsType[*engine.DialError](err); ok {
			p.dialFailed(err)
			p.connectFailed()
			p.connRTT = c.Loop().Now().Sub(p.dialAt)
			p.trackDone(true)
			p.up = nil
			p.connect()
			return
		}
	}
	p.finish(c, err)
}

// The remaining events, shared by both sides.

// OnEOF passes the client's FIN on.
func (h *downHandler) OnEOF(c *engine.Conn) { withPair(c, func(p *pair) { p.eofFrom(c) }) }

// OnEOF passes the upstream's FIN on.
func (h *upHandler) OnEOF(c *engine.Conn) { withPair(c, func(p *pair) { p.eofFrom(c) }) }

// OnDrain resumes the upstream once the client's queue has drained.
func (h *downHandler) OnDrain(c *engine.Conn) { withRelay(c, func(p *pair) { p.dirs[1].drained() }) }

// OnDrain resumes the client once the upstream's queue has drained.
func (h *upHandler) OnDrain(c *engine.Conn) { withRelay(c, func(p *pair) { p.dirs[0].drained() }) }

// OnFlushed passes the upstream's FIN on to the client once flushed.
func (h *downHandler) OnFlushed(c *engine.Conn) { withRelay(c, func(p *pair) { p.dirs[1].flushed() }) }

// OnFlushed passes the client's FIN on to the upstream once flushed.
func (h *upHandler) OnFlushed(c *engine.Conn) { withRelay(c, func(p *pair) { p.dirs[0].flushed() }) }

// OnTimeout closes a client whose preamble did not arrive in time.
func (h *downHandler) OnTimeout(c *engine.Conn) {
	withPair(c, func(p *pair) {
		if p.state == stPreamble {
			p.refusePreamble("tcp: closing a connection whose preamble did not arrive in time", engine.ErrTimeout)
		}
	})
}

// refusePreamble closes a client whose PROXY header (while one is awaited) or
// ClientHello did not arrive whole, counted as a bad one of that kind and logged.
func (p *pair) refusePreamble(msg string, err error) {
	p.px.stats.badProxy.Add(boolU64(p.proxy))
	p.px.stats.badHello.Add(boolU64(!p.proxy && p.sni))
	p.px.opt.Logger.Warn(msg, "client", p.client, "err", err)
	p.down.Close(err)
}

// OnTimeout is not used on upstream connections (the connect timeout is the
// engine's).
func (h *upHandler) OnTimeout(*engine.Conn) {}

// OnShutdown closes clients that are not relaying yet; relays run on until the
// engine's grace period ends.
func (h *downHandler) OnShutdown(c *engine.Conn) {
	withPair(c, func(p *pair) {
		if p.state == stPreamble {
			c.Close(nil)
		}
	})
}

// OnShutdown does nothing: the client side decides.
func (h *upHandler) OnShutdown(*engine.Conn) {}

// OnClose ends the relay of a closed client.
func (h *downHandler) OnClose(c *engine.Conn, err error) {
	h.px.stats.active.Add(-1)
	withPair(c, func(p *pair) { p.closed(c, err) })
}

// OnClose ends the relay of a closed upstream, or tries the next server.
func (h *upHandler) OnClose(c *engine.Conn, err error) {
	withPair(c, func(p *pair) {
		if p.up == c || p.state == stConnecting {
			p.closed(c, err)
		}
	})
}

// OnReadable moves client bytes by splice.
func (h *downHandler) OnReadable(c *engine.Conn) {
	withRelay(c, func(p *pair) { p.dirs[0].readable() })
}

// OnReadable moves upstream bytes by splice.
func (h *upHandler) OnReadable(c *engine.Conn) { withRelay(c, func(p *pair) { p.dirs[1].readable() }) }

func withPair(c *engine.Conn, f func(*pair)) {
	if p, ok := c.Context().(*pair); ok && p.state != stDone {
		f(p)
	}
}

func withRelay(c *engine.Conn, f func(*pair)) {
	if p, ok := c.Context().(*pair); ok && p.state == stRelaying {
		f(p)
	}
}

func boolU64(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
