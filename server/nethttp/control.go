package nethttp

import (
	"net/http"
	"time"
)

// The methods below are the ones http.ResponseController looks for, and the
// CloseNotify of net/http's own ResponseWriter: handlers written for net/http's
// server (SSE handlers that lift their deadlines, frameworks that stream with
// CloseNotify) run unchanged instead of getting http.ErrNotSupported or failing a
// type assertion.

// SetReadDeadline bounds the handler's reads of the request body: a Read that
// would wait past t returns an error matching os.ErrDeadlineExceeded, as a read
// from net/http's connection does. The zero time removes the deadline.
func (w *responseWriter) SetReadDeadline(t time.Time) error {
	w.x.pipe.setReadDeadline(t)
	return nil
}

// SetWriteDeadline bounds the handler's writes: once t has passed, a write that
// has to hand output to the connection fails with an error matching
// os.ErrDeadlineExceeded. The zero time removes the deadline. Like net/http's,
// whose SetWriteDeadline replaces the server's WriteTimeout for the request, any
// call replaces the adapter's Options.ResponseTimeout for this request, so an
// event stream that lifts its deadline is not cut. The server's own write timeout
// measures the client's progress, not the response's age, so a long-lived stream
// needs no call to lift it.
func (w *responseWriter) SetWriteDeadline(t time.Time) error {
	w.x.stopWatch()
	w.x.pipe.setWriteDeadline(t)
	return nil
}

// EnableFullDuplex reports success: the adapter always lets the handler read the
// request body after the response has started, on HTTP/1.1 and HTTP/2.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// FlushError is Flush with its error: the one of the connection or of a write
// deadline that has passed, or http.ErrHijacked.
func (w *responseWriter) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(200)
	}
	w.x.progress()
	return w.flushBuf(false)
}

// CloseNotify returns a channel that receives true once the client has gone (the
// request context is cancelled), like net/http's deprecated http.CloseNotifier,
// which frameworks still assert.
func (w *responseWriter) CloseNotify() <-chan bool {
	if w.closeNotify == nil {
		ch := make(chan bool, 1)
		w.closeNotify = ch
		w.x.ctx.AfterFunc(func() { ch <- true })
	}
	return w.closeNotify
}

func (h h2Writer) SetReadDeadline(t time.Time) error  { return h.w.SetReadDeadline(t) }
func (h h2Writer) SetWriteDeadline(t time.Time) error { return h.w.SetWriteDeadline(t) }
func (h h2Writer) EnableFullDuplex() error            { return nil }
func (h h2Writer) FlushError() error                  { return h.w.FlushError() }
func (h h2Writer) CloseNotify() <-chan bool           { return h.w.CloseNotify() }
