package server

import (
	"log/slog"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http2"
)

// StreamExchange is the HTTP/2 stream's Exchange with the extras an adapter needs
// to follow a request whose handler runs elsewhere (package server/nethttp uses
// it). Like every Exchange method, they run on the connection's loop unless said
// otherwise.
type StreamExchange interface {
	Exchange
	// BodyExpected reports whether request body octets or trailers may still arrive
	// (the client has not ended its side of the stream yet).
	BodyExpected() bool
	// ContentLength returns the request's declared content-length, or -1.
	ContentLength() int64
	// EachReqTrailer calls f for every request trailer field; they are complete once
	// OnBody has reported the end of the body.
	EachReqTrailer(f func(name, value []byte))
	// Reset ends the exchange at once, without completing the response: the stream
	// gets RST_STREAM INTERNAL_ERROR (net/http's ErrAbortHandler on HTTP/2).
	Reset()
	// Cancel is Reset for a stream the client no longer needs (it went away, or
	// half-closed a connection it can no longer read answers from in time): the
	// stream gets RST_STREAM CANCEL (RFC 9113 §7) instead of INTERNAL_ERROR.
	Cancel()
	// OnPeerEOF registers f to run (on the loop) if the client half-closes the
	// connection (a TCP FIN) before the response ended: it can send no more frames,
	// WINDOW_UPDATE included. As on HTTP/1.1 (Ctx.OnPeerEOF), the stream is
	// otherwise still answered.
	OnPeerEOF(f func())
	// Logger returns the server's logger; safe from any goroutine.
	Logger() *slog.Logger
}

var _ StreamExchange = (*h2x)(nil)

// BodyExpected reports whether the client has not sent END_STREAM yet.
func (x *h2x) BodyExpected() bool { return !x.s.BodyDone() }

// ContentLength returns the request's content-length, or -1 when it sent none.
func (x *h2x) ContentLength() int64 { return x.s.ContentLength }

// EachReqTrailer calls f for every request trailer field.
func (x *h2x) EachReqTrailer(f func(name, value []byte)) {
	for _, t := range x.reqTrailers {
		f([]byte(t.Name), []byte(t.Value))
	}
}

// Reset sends RST_STREAM INTERNAL_ERROR unless the response is complete, and
// forgets the exchange; OnClose does not run.
func (x *h2x) Reset() { x.resetWith(http2.ErrCodeInternal) }

// Cancel sends RST_STREAM CANCEL unless the response is complete, and forgets the
// exchange; OnClose does not run.
func (x *h2x) Cancel() { x.resetWith(http2.ErrCodeCancel) }

// stalled resets a stream whose own send window stayed shut for the write timeout
// (h2conn.checkStall): RST_STREAM CANCEL, and OnClose hears engine.ErrWriteTimeout.
func (x *h2x) stalled() {
	if x.closed || x.ended {
		return
	}
	x.hc.c.ResetStream(x.id, http2.ErrCodeCancel)
	x.abandon(engine.ErrWriteTimeout)
	x.hc.kick()
}

func (x *h2x) resetWith(code http2.ErrCode) {
	if x.closed || x.ended {
		return
	}
	x.hc.c.ResetStream(x.id, code)
	x.onClose = nil
	x.abandon(ErrConnClosed)
	x.hc.kick()
}

// OnPeerEOF registers f to run if the client half-closes the connection before
// the response ended.
func (x *h2x) OnPeerEOF(f func()) { x.onEOF = f }

// Logger returns the server's logger (Options.Logger).
func (x *h2x) Logger() *slog.Logger { return x.hc.h.srv.opts.Logger }

// Loop returns the event loop that owns the stream's connection.
func (x *h2x) Loop() *engine.Loop { return x.hc.ec.Loop() }

// Layer returns the layer (TLS) the stream's connection runs under, or nil on a
// plain connection, as Ctx.Layer does for HTTP/1.1: adapters read the TLS state
// from it.
func (x *h2x) Layer() Layer { return x.hc.lay }
