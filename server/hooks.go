package server

import (
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
)

// This file holds the hooks that adapters built on the server (package
// server/nethttp, for one) use to follow a request whose handler runs elsewhere
// and to take a connection out of HTTP. Like every Ctx method, they must be
// called on the connection's loop.

// ErrBodyTimeout is reported to OnBodyError when the request body stopped arriving
// for longer than Options.BodyTimeout.
var ErrBodyTimeout = errors.New("server: request body not received in time")

// ErrHeadSent is returned by Hijack once the response head has been written.
var ErrHeadSent = errors.New("server: response head already sent")

// OnBodyError registers f to run once, on the loop, if the request body cannot be
// received completely: it is malformed or over the body limit (err is the parser's
// *http1.Error), it stopped arriving (ErrBodyTimeout), or the connection closed
// before its end (the close reason, or io.ErrUnexpectedEOF). In the first two cases
// the server answers the request itself (400, 413, 408 …) and the response is over
// when f runs. A consumer of OnBody that waits for more pieces must stop waiting
// then.
func (c *Ctx) OnBodyError(f func(err error)) { c.onBodyErr = f }

// failBody reports err to the OnBodyError hook, at most once.
func (c *Ctx) failBody(err error) {
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	if f := c.onBodyErr; f != nil {
		c.onBodyErr = nil
		f(err)
	}
}

// SetResponseTimeout overrides Options.ResponseTimeout for this request: d > 0 is
// the bound to use instead, d < 0 turns it off (the handler then bounds itself, as
// the net/http adapter does: net/http's own server has no such timeout), and 0
// restores the server's. The write timeout still bounds every wait for the client.
func (c *Ctx) SetResponseTimeout(d time.Duration) {
	c.respTimeout = d
	c.awaitHandler()
}

// RequestTrailers returns the trailer fields that followed a chunked request body.
// They are complete once OnBody reported the end of the body; the slices are valid
// until the response ends.
func (c *Ctx) RequestTrailers() []http1.Header { return c.body.Trailers() }

// Logger returns the server's logger (Options.Logger). Unlike other Ctx methods it
// may be called from any goroutine while the Ctx is valid.
func (c *Ctx) Logger() *slog.Logger { return c.cn.ls.srv.opts.Logger }

// AppendHeadFields appends the fields the server puts in every response head it
// writes, "Date: …\r\n" and "Server: …\r\n" (unless Options.ServerName is "-"), for
// a handler that writes its own head on a hijacked connection, so that its responses
// carry them like every other.
func (c *Ctx) AppendHeadFields(b []byte) []byte {
	b = http1.AppendDateAt(b, c.ec.Loop().Now())
	return append(b, c.cn.ls.srv.serverH...)
}

// Hijack takes the connection out of HTTP as net/http's Hijacker does: like
// Upgrade, but nothing is written (the new owner writes its own response, if any)
// and it is allowed while a request body is still arriving (its unread bytes then
// reach h). Upgrade is the call for protocols written on the loop; Hijack serves
// adapters whose handlers want the raw connection. It fails with ErrConnClosed,
// ErrEnded, or ErrHeadSent once the response head was written, and with ErrLayered
// on a connection under a protocol layer (TLS) unless h is a LayeredHandler (see
// Upgrade).
func (c *Ctx) Hijack(h engine.Handler) error {
	switch {
	case c.closed || c.ec.Closed():
		return ErrConnClosed
	case c.ended:
		return ErrEnded
	case c.headSent:
		return ErrHeadSent
	case !c.cn.canHandOver(h):
		return ErrLayered
	}
	c.letGo(h)
	return nil
}
