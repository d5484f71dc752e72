package server

import (
	"errors"
	"io"
)

// This file holds the hooks that adapters built on the server (package
// server/nethttp, for one) use to follow a request whose handler runs elsewhere.
// Every hook is called on the connection's loop, like every Ctx method.

// ErrBodyTimeout is reported to OnBodyError when the request body stopped arriving
// for longer than Options.BodyTimeout.
var ErrBodyTimeout = errors.New("server: request body not received in time")

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
