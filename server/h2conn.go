package server

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/http2"
)

// HTTP2Options configure the HTTP/2 side of a listener. Zero fields take their defaults.
type HTTP2Options struct {
	// Config holds the protocol limits (see package http2 and docs/http2.md). Its
	// MaxRequestLine, MaxHeaderBytes and MaxHeaderFields default to the server's
	// Limits, so a request meets the same limits over HTTP/1.1 and HTTP/2 (and
	// SETTINGS_MAX_HEADER_LIST_SIZE, unless set, is derived from them,
	// http2.HeaderListSizeFor).
	Config http2.Config
	// IdleTimeout closes (with a graceful GOAWAY) a connection that has had no open
	// stream for this long. Default: the server's IdleTimeout.
	IdleTimeout time.Duration
	// WriteTimeout resets (RST_STREAM CANCEL) a stream whose own flow-control window
	// the peer keeps at zero without progress for this long, and closes a connection
	// whose streams wait for its window or output room — a peer that keeps the
	// connection's window at zero, or stops reading — as long. Default: the server's
	// WriteTimeout.
	WriteTimeout time.Duration
	// FloodTarpit is how long a connection cut off with GOAWAY ENHANCE_YOUR_CALM (a
	// flood: rapid reset, PING, SETTINGS, CONTINUATION...) is held open unread
	// before it is closed. A flooding client then blocks on its own full socket
	// instead of reconnecting at once and flooding again, so the attack stops
	// costing the machine CPU; the kernel keeps at most one receive window of its
	// bytes. Default 10s; negative: close at once after the GOAWAY.
	FloodTarpit time.Duration
	// MaxTarpitted bounds the connections each loop holds in the tarpit; a cut-off
	// connection beyond it is closed at once. Default 1024 (a descriptor each, and
	// a receive buffer shrunk to the kernel's minimum on Linux).
	MaxTarpitted int
	// Handler serves the streams. When nil, ListenDispatch links it to the listener's
	// handler, so Listener.SetHandler (a reload) swaps both protocols at once. A handler
	// must implement ExchangeHandler to serve HTTP/2; one that only has ServeGale gets
	// 505 for every stream.
	Handler Handler
}

// HTTP2 is the engine.Handler of HTTP/2 connections (prior knowledge h2c, or h2 after a
// TLS handshake): it drives one http2.Conn per connection and serves each stream as an
// Exchange. Make it with Server.NewHTTP2 and put it in Dispatch.H2. It is immutable once
// the listener serves, and shared by every loop.
type HTTP2 struct {
	srv  *Server
	opts HTTP2Options
	cfg  *http2.Config // opts.Config with its defaults, shared by every connection
	// box is the handler box streams read at their start: the listener's (linked by
	// ListenDispatch) or one of its own.
	box *atomic.Pointer[handlerBox]
	// conns counts open HTTP/2 connections, for tests and stats.
	conns atomic.Int64
}

var (
	_ engine.Handler      = (*HTTP2)(nil)
	_ engine.FlushHandler = (*HTTP2)(nil)
	_ http2.Handler       = (*h2conn)(nil)
)

// NewHTTP2 returns an HTTP/2 connection handler for this server's loops.
func (s *Server) NewHTTP2(opts HTTP2Options) *HTTP2 {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = s.opts.IdleTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = s.opts.WriteTimeout
	}
	if opts.FloodTarpit == 0 {
		opts.FloodTarpit = 10 * time.Second
	}
	if opts.MaxTarpitted <= 0 {
		opts.MaxTarpitted = 1024
	}
	if opts.Config.MaxRequestLine <= 0 {
		opts.Config.MaxRequestLine = s.opts.Limits.MaxRequestLine
	}
	if opts.Config.MaxHeaderBytes <= 0 {
		opts.Config.MaxHeaderBytes = s.opts.Limits.MaxHeaderBytes
	}
	if opts.Config.MaxHeaderFields <= 0 {
		opts.Config.MaxHeaderFields = s.opts.Limits.MaxHeaderFields
	}
	h := &HTTP2{srv: s, opts: opts, cfg: opts.Config.Shared()}
	if opts.Handler != nil {
		h.box = new(atomic.Pointer[handlerBox])
		h.box.Store(&handlerBox{opts.Handler})
	}
	return h
}

// Conns returns how many HTTP/2 connections are open.
func (h *HTTP2) Conns() int64 { return h.conns.Load() }

// linkHandler makes the streams use the listener's handler box unless the HTTP2 has
// its own handler. Called by ListenDispatch before the listener serves.
func (h *HTTP2) linkHandler(box *atomic.Pointer[handlerBox]) {
	if h.box == nil {
		h.box = box
	}
}

// h2conn is one HTTP/2 connection: the protocol state machine, its exchanges and its
// timers. Every field is owned by the connection's loop.
type h2conn struct {
	h    *HTTP2
	ls   *loopState
	ec   *engine.Conn
	out  Stream // where output goes: ec, or the layer under HTTP/2 (OpenLayered)
	lay  Layer  // the layer (TLS) the connection runs under; nil on a plain one
	c    *http2.Conn
	live map[uint32]*h2x // exchanges whose stream is open, by stream id

	settings, shutdown, stall *engine.Timer

	lastProgress int64 // loop clock (ns) of the last DATA a waiting stream got out
	blocked      int   // exchanges waiting for flow-control window or output room
	inFeed       bool  // inside Conn.Feed: output is moved out when it returns
	flushing     bool  // inside flush: exchanges only add output
	closing      bool  // the socket closes once the output is written
	eof          bool  // the client half-closed
	closed       bool
	tarpitted    bool   // cut off for a flood and held unread until the timer (FloodTarpit)
	flushLater   bool   // a flush is deferred to the end of the loop's iteration (kickLater)
	lateFlush    func() // hc.deferredFlush, made the first time one is deferred
}

// OnOpen starts the connection: the server preface is written at once and the SETTINGS
// acknowledgement is awaited for Config.SettingsTimeout.
func (h *HTTP2) OnOpen(ec *engine.Conn) { h.open(ec, nil) }

// open starts a connection whose output goes to the layer l, or to ec when l is nil.
func (h *HTTP2) open(ec *engine.Conn, l Layer) {
	h.conns.Add(1)
	hc := &h2conn{h: h, ls: h.srv.loops[ec.Loop().ID()], ec: ec, out: ec, lay: l}
	if l != nil {
		hc.out = l
	}
	hc.c = http2.NewSharedConn(h.cfg, hc)
	hc.c.SetCounters(&hc.ls.h2)
	hc.ls.h2Opened.Add(1)
	ec.SetContext(hc)
	ec.SetWriteTimeout(h.opts.WriteTimeout)
	cfg := hc.c.Config()
	hc.settings = ec.Loop().AfterFunc(cfg.SettingsTimeout, func() {
		if !hc.closed && !hc.c.SettingsAcked() {
			hc.c.SettingsTimeout()
			hc.flush()
		}
	})
	ec.SetTimeout(h.opts.IdleTimeout)
	hc.flush()
}

// OnData feeds the protocol state machine; unconsumed bytes are an incomplete frame the
// engine keeps for the next call.
func (h *HTTP2) OnData(ec *engine.Conn, in []byte) int {
	hc := ec.Context().(*h2conn)
	if hc.closing {
		return len(in)
	}
	hc.inFeed = true
	n, _ := hc.c.Feed(in)
	hc.inFeed = false
	hc.flush()
	if hc.closing {
		return len(in)
	}
	return n
}

// OnEOF: a client that half-closes sends no more frames; the streams it has opened are
// answered, then the connection closes. Exchanges that asked (OnPeerEOF) are told
// first: the proxy abandons its requests then, as nginx does.
func (h *HTTP2) OnEOF(ec *engine.Conn) {
	hc := ec.Context().(*h2conn)
	hc.eof = true
	var told []*h2x
	for _, x := range hc.live {
		if x.onEOF != nil && !x.closed && !x.endWant {
			told = append(told, x)
		}
	}
	for _, x := range told {
		if f := x.onEOF; f != nil && !x.closed && !x.endWant {
			x.onEOF = nil
			f()
		}
	}
	if hc.ec.Closed() {
		return
	}
	hc.checkDone()
}

// OnDrain moves more protocol output to the socket once its queue has fallen.
func (h *HTTP2) OnDrain(ec *engine.Conn) { ec.Context().(*h2conn).flush() }

// OnFlushed is unused: the connection closes with CloseAfterFlush.
func (h *HTTP2) OnFlushed(ec *engine.Conn) {}

// OnTimeout is the idle timer: a connection without streams for IdleTimeout is shut
// down gracefully.
func (h *HTTP2) OnTimeout(ec *engine.Conn) {
	hc := ec.Context().(*h2conn)
	if hc.tarpitted {
		ec.Close(nil)
		return
	}
	if len(hc.live) > 0 || hc.c.NumStreams() > 0 {
		return
	}
	hc.beginShutdown()
}

// OnShutdown starts the two-phase GOAWAY: streams in flight complete, new ones are
// refused once the PING round trip (or ShutdownTimeout) has passed.
// A connection in the flood tarpit is closed at once.
func (h *HTTP2) OnShutdown(ec *engine.Conn) {
	hc := ec.Context().(*h2conn)
	if hc.tarpitted {
		ec.Close(nil)
		return
	}
	hc.beginShutdown()
}

// OnClose abandons every exchange still open and stops the timers.
func (h *HTTP2) OnClose(ec *engine.Conn, err error) {
	hc := ec.Context().(*h2conn)
	hc.closed = true
	if hc.tarpitted {
		hc.ls.h2Tarpitted--
	}
	h.conns.Add(-1)
	hc.ls.h2Closed.Add(1)
	for _, t := range [...]*engine.Timer{hc.settings, hc.shutdown, hc.stall} {
		if t != nil {
			t.Stop()
		}
	}
	if err == nil {
		err = ErrConnClosed
	}
	for _, x := range hc.live {
		x.abandon(err)
	}
	hc.live = nil
}

// beginShutdown sends the first GOAWAY and arms the timer that sends the final one.
func (hc *h2conn) beginShutdown() {
	if hc.shutdown != nil || hc.closed {
		return
	}
	hc.c.Shutdown()
	hc.shutdown = hc.ec.Loop().AfterFunc(hc.c.Config().ShutdownTimeout, func() {
		if !hc.closed {
			hc.c.FinishShutdown()
			hc.flush()
		}
	})
	hc.flush()
}

// flush moves protocol output into the engine's queue while the queue is at most the
// low-water mark (OnDrain brings the next round), then closes the connection if the protocol is done. It is the one
// place Out and Drained are called; exchanges call kick, which defers to a flush in
// progress or to the end of Feed.
func (hc *h2conn) flush() {
	if hc.closed || hc.flushing {
		return
	}
	hc.flushing = true
	limit := hc.h.srv.eng.LowWater()
	for hc.out.Buffered() < limit {
		out := hc.c.Out()
		if len(out) == 0 {
			break
		}
		if hc.out.Write(out) != nil {
			break
		}
		hc.c.Drained(len(out))
	}
	hc.flushing = false
	if len(hc.c.Out()) > 0 {
		hc.out.WantDrain()
	}
	hc.checkDone()
}

// kick flushes output an exchange produced outside Feed (from Post, OnDrain or a timer).
func (hc *h2conn) kick() {
	if !hc.inFeed {
		hc.flush()
	}
}

// kickLater flushes output an exchange produced outside Feed at the end of the loop's
// iteration, so that what else the iteration adds (the end of the stream) goes with it.
func (hc *h2conn) kickLater() {
	if hc.inFeed || hc.flushLater {
		return
	}
	if hc.lateFlush == nil {
		hc.lateFlush = hc.deferredFlush
	}
	hc.flushLater = true
	hc.ec.Loop().Defer(hc.lateFlush)
}

// deferredFlush is the flush kickLater deferred.
func (hc *h2conn) deferredFlush() {
	hc.flushLater = false
	hc.flush()
}

// checkDone closes the socket after the output when the protocol has ended, or when
// the client half-closed and nothing is left to answer.
func (hc *h2conn) checkDone() {
	if hc.closing || hc.closed {
		return
	}
	done := hc.c.Done() || hc.c.Err() != nil || (hc.eof && len(hc.live) == 0 && hc.c.NumStreams() == 0)
	if !done || len(hc.c.Out()) > 0 {
		return
	}
	hc.closing = true
	if hc.lay != nil {
		hc.lay.CloseNotify()
	}
	var ce *http2.ConnError
	if errors.As(hc.c.Err(), &ce) && ce.Code == http2.ErrCodeEnhanceYourCalm {
		// Cut off for a flood: reading on (lingering) would only take in more of it.
		if hc.h.opts.FloodTarpit > 0 && hc.ls.h2Tarpitted < hc.h.opts.MaxTarpitted {
			hc.tarpit()
			return
		}
		hc.ec.DropAfterFlush()
		return
	}
	hc.ec.CloseAfterFlush(!hc.eof)
}

// tarpit holds a connection cut off for a flood: the GOAWAY already queued is sent,
// nothing more is read, and the connection closes when FloodTarpit has passed (or
// earlier if the loop's tarpit is full at the next cut-off, or the peer goes).
func (hc *h2conn) tarpit() {
	hc.tarpitted = true
	hc.ls.h2Tarpitted++
	hc.ec.PauseRead()
	shrinkReceive(hc.ec.Fd())
	hc.ec.SetTimeout(hc.h.opts.FloodTarpit)
}

// streamGone forgets an exchange whose stream ended, and re-arms the idle timer or,
// while the server drains, starts the shutdown once nothing is in flight.
func (hc *h2conn) streamGone(x *h2x) {
	if hc.live[x.id] != x {
		return
	}
	delete(hc.live, x.id)
	hc.ls.done.Add(1) // the stream's request is no longer in progress
	if len(hc.live) == 0 {
		hc.live = nil // an idle connection keeps no map
	}
	if x.waiting {
		x.waiting = false
		hc.blocked--
	}
	if len(hc.live) == 0 {
		if hc.h.srv.draining.Load() {
			hc.beginShutdown()
		}
		if !hc.tarpitted { // a tarpitted connection keeps its closing timer
			hc.ec.SetTimeout(hc.h.opts.IdleTimeout)
		}
	}
}

// progress records that the waiting stream x sent DATA, for the stall timer.
func (hc *h2conn) progress(x *h2x) {
	now := hc.ec.Loop().Now().UnixNano()
	hc.lastProgress, x.lastOut = now, now
}

// waitWindow marks x as waiting for window or output room and arms the stall timer
// (checkStall) for WriteTimeout.
func (hc *h2conn) waitWindow(x *h2x) {
	if x.waiting {
		return
	}
	x.waiting = true
	x.lastOut = hc.ec.Loop().Now().UnixNano()
	hc.blocked++
	if hc.blocked == 1 {
		hc.lastProgress = x.lastOut
		if hc.stall == nil {
			hc.stall = hc.ec.Loop().AfterFunc(hc.h.opts.WriteTimeout, hc.checkStall)
		} else {
			hc.stall.Reset(hc.h.opts.WriteTimeout)
		}
	}
}

// unwait clears x's waiting mark.
func (hc *h2conn) unwait(x *h2x) {
	if x.waiting {
		x.waiting = false
		hc.blocked--
	}
}

// checkStall runs on the stall timer. The blast radius of a stall is what holds it: a
// stream whose own send window stayed shut, with no DATA out for WriteTimeout, is
// reset with RST_STREAM CANCEL (its exchange's OnClose hears engine.ErrWriteTimeout)
// and the connection's other streams go on; a connection whose waiting streams got
// no DATA out for WriteTimeout while their own windows were open (the connection's
// window shut, or output room that does not drain) is closed with
// engine.ErrWriteTimeout.
func (hc *h2conn) checkStall() {
	if hc.closed || hc.blocked == 0 {
		return
	}
	wto := hc.h.opts.WriteTimeout
	now := hc.ec.Loop().Now().UnixNano()
	next := wto
	stale := false // a stream with its own window open waited wto: the connection holds it
	var stuck []*h2x
	for _, x := range hc.live {
		if !x.waiting {
			continue
		}
		if idle := time.Duration(now - x.lastOut); idle < wto {
			next = min(next, wto-idle)
		} else if sw, _ := hc.c.SendWindow(x.id); sw <= 0 {
			stuck = append(stuck, x)
		} else {
			stale = true
		}
	}
	for _, x := range stuck {
		x.stalled()
	}
	if hc.blocked == 0 {
		return
	}
	connIdle := time.Duration(now - hc.lastProgress)
	if connIdle >= wto && stale {
		hc.ec.Close(engine.ErrWriteTimeout)
		return
	}
	if connIdle < wto {
		next = min(next, wto-connIdle)
	}
	hc.stall.Reset(next)
}

// OnRequest starts an exchange for a new stream and hands it to the handler.
func (hc *h2conn) OnRequest(s *http2.Stream) {
	x := newH2x(hc, s)
	if hc.live == nil {
		hc.live = map[uint32]*h2x{}
	}
	hc.live[s.ID] = x
	hc.ec.CancelTimeout()
	hc.ls.requests.Add(1)
	x.serve()
}

// OnData delivers request body bytes to the stream's exchange.
func (hc *h2conn) OnData(s *http2.Stream, p []byte, end bool) {
	if x, ok := s.Value.(*h2x); ok {
		x.onData(p, end)
	}
}

// OnTrailers ends the stream's request body; the trailers are kept for the exchange.
func (hc *h2conn) OnTrailers(s *http2.Stream, tr []http2.Field) {
	if x, ok := s.Value.(*h2x); ok {
		x.reqTrailers = tr
		x.onData(nil, true)
	}
}

// OnStreamReset abandons the stream's exchange.
func (hc *h2conn) OnStreamReset(s *http2.Stream, code http2.ErrCode, byPeer bool) {
	if x, ok := s.Value.(*h2x); ok {
		x.abandon(&StreamResetError{Code: code, ByPeer: byPeer})
	}
}

// OnWritable resumes the stream's queued output.
func (hc *h2conn) OnWritable(s *http2.Stream) {
	if x, ok := s.Value.(*h2x); ok {
		hc.unwait(x)
		x.send()
	}
}

// OnGoAway: the client opens no more streams; the connection closes once the open ones
// are answered (Conn.Done).
func (hc *h2conn) OnGoAway(code http2.ErrCode, debug []byte) {}

// StreamResetError is what an HTTP/2 exchange's OnClose callback receives when its
// stream was reset: by the client (ByPeer) or by the server's protocol layer.
type StreamResetError struct {
	Code   http2.ErrCode
	ByPeer bool
}

func (e *StreamResetError) Error() string {
	if e.ByPeer {
		return "server: stream reset by the client: " + e.Code.String()
	}
	return "server: stream reset: " + e.Code.String()
}

// ListenHTTP2 adds a listening address where every connection speaks HTTP/2 by prior
// knowledge (no HTTP/1: a connection that does not open with the preface gets GOAWAY
// PROTOCOL_ERROR). h serves the streams; the Listener swaps it on reload.
func (s *Server) ListenHTTP2(addr string, h Handler, opts HTTP2Options) (*Listener, error) {
	l, h2 := s.http2Listener(h, opts)
	bound, err := s.eng.ListenWith(addr, s.accepting(h2), s.listenOpts())
	if err != nil {
		return nil, err
	}
	s.addrs = append(s.addrs, bound)
	l.Addr = bound
	return l, nil
}

// ListenFDsHTTP2 serves inherited listening sockets like ListenHTTP2.
func (s *Server) ListenFDsHTTP2(fds []int, h Handler, opts HTTP2Options) (*Listener, error) {
	l, h2 := s.http2Listener(h, opts)
	if err := s.eng.ListenFDsWith(fds, s.accepting(h2), s.listenOpts()); err != nil {
		return nil, err
	}
	return l, nil
}

func (s *Server) http2Listener(h Handler, opts HTTP2Options) (*Listener, *HTTP2) {
	ch := &connHandler{srv: s}
	ch.handler.Store(&handlerBox{h})
	opts.Handler = nil
	h2 := s.NewHTTP2(opts)
	h2.linkHandler(&ch.handler)
	dp := &dispatcher{http1: ch}
	dp.by[ProtoH2] = h2
	return &Listener{ch: ch, dp: dp}, h2
}

// h2Date returns the Date field value for now, built once per second per loop (HTTP/2
// responses carry it as a string field).
func (ls *loopState) h2Date(now time.Time) string {
	if sec := now.Unix(); sec != ls.h2dateSec || ls.h2date == "" {
		b := http1.AppendDateAt(ls.scratch[:0], now)
		ls.h2date, ls.h2dateSec = string(b[len("Date: "):len(b)-2]), sec
	}
	return ls.h2date
}
