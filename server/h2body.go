package server

import "github.com/gale-server/gale/http1"

// OnBody streams the request body to f. Bytes are returned to flow control as f
// receives them, so a handler that pauses stops its client at the stream window.
// The first call answers "expect: 100-continue" with a 100 (Continue) while no
// body octet has arrived, as HTTP/1.1 does when the handler asks for the body: a
// client that waits for it (Go's, for ExpectContinueTimeout) sends the body at once.
func (x *h2x) OnBody(f func(p []byte, end bool)) {
	if !x.bodyAsked {
		x.bodyAsked = true
		if !x.bodyEnd && x.bodyRead == 0 && !x.headSent && x.expects100() {
			x.WriteInformational(100, nil)
		}
	}
	x.onBody = f
	x.deliver()
	x.armBody()
}

// expects100 reports whether the request carries "expect: 100-continue".
func (x *h2x) expects100() bool {
	v, ok := x.ReqHeader("expect")
	return ok && http1.EqualFold(v, "100-continue")
}

// ReadBody collects the body, bounded by the server's body limit (413 beyond it,
// from onData).
func (x *h2x) ReadBody(f func(body []byte)) {
	x.OnBody(func(p []byte, end bool) {
		x.bodyBuf = append(x.bodyBuf, p...)
		if end {
			f(x.bodyBuf)
		}
	})
}

// PauseBody holds body pieces until ResumeBody; the client stops at its window.
func (x *h2x) PauseBody() {
	x.bodyPaused = true
	x.armBody()
}

// ResumeBody delivers the held pieces and resumes.
func (x *h2x) ResumeBody() {
	x.bodyPaused = false
	x.deliver()
	x.armBody()
	x.hc.kick()
}

// onData receives body bytes from the connection.
func (x *h2x) onData(p []byte, end bool) {
	if x.closed {
		return // the Conn reclaims the window of a reset stream
	}
	if x.endWant && x.ended {
		x.discard(p, end)
		return
	}
	if x.bodyRead += int64(len(p)); x.bodyFailed || x.overLimit() {
		// The octets stay unconsumed until the 413 or 408 is out: done then
		// returns them to flow control and drops the rest of the body, or resets.
		if !x.endWant {
			x.failBody(413, errBodyTooLarge)
		}
		return
	}
	if x.onBody != nil && !x.bodyPaused && len(x.held) == 0 {
		if len(p) > 0 {
			x.onBody(p, false)
			x.hc.c.Consumed(x.id, len(p))
		}
		if end {
			x.bodyEnd = true
			x.deliver()
		}
		x.armBody()
		return
	}
	x.held = append(x.held, p...)
	x.bodyEnd = x.bodyEnd || end
}

// overLimit reports whether more request body arrived than the body limit allows.
func (x *h2x) overLimit() bool { return x.bodyLimit > 0 && x.bodyRead > x.bodyLimit }

// errBodyTooLarge is what OnClose hears when a request body without a declared
// length grows past the body limit.
var errBodyTooLarge = &http1.Error{Status: 413, Reason: "request body too large"}

// failBody ends an exchange whose body passed the server's body limit (413,
// errBodyTooLarge) or stopped arriving for timeouts.body (408, ErrBodyTimeout), as
// HTTP/1.1 does: the status when no head was sent (else the stream is reset), then
// RST_STREAM NO_ERROR once it is out (done), and the handler's OnClose hears err, so
// that a proxy or an adapted net/http handler streaming the body stops instead of
// waiting for or taking the rest. A declared content-length above the limit is
// answered 413 before the handler runs.
func (x *h2x) failBody(status int, err error) {
	f := x.onClose
	x.onClose, x.onBody, x.bodyFailed = nil, nil, true
	x.stopBody()
	reason := ""
	if he, ok := err.(*http1.Error); ok {
		reason = he.Reason
	}
	x.Error(status, reason)
	if f != nil {
		f(err)
	}
}

// armBody runs timeouts.body while the handler waits for body octets the client
// can send (it asked for the body, is not paused, nothing is held back, so its
// window is open), restarting it at every piece; otherwise it stops the timer.
// HTTP/1.1 measures the same wait between two reads of a body.
func (x *h2x) armBody() {
	d := x.hc.h.srv.opts.BodyTimeout
	if !x.bodyWaiting() || d <= 0 {
		x.stopBody()
		return
	}
	if x.bodyTimer == nil {
		x.bodyTimer = x.hc.ec.Loop().AfterFunc(d, x.bodyTimedOut)
		return
	}
	x.bodyTimer.Reset(d)
}

// bodyWaiting reports whether the handler waits for body octets the client may send.
func (x *h2x) bodyWaiting() bool {
	return x.onBody != nil && !x.bodyPaused && len(x.held) == 0 && !x.bodyEnd && !x.closed && !x.endWant && !x.bodyFailed
}

// stopBody disarms the body timer.
func (x *h2x) stopBody() {
	if x.bodyTimer != nil {
		x.bodyTimer.Stop()
	}
}

// bodyTimedOut answers 408 for a body that stopped arriving.
func (x *h2x) bodyTimedOut() {
	if x.bodyWaiting() {
		x.failBody(408, ErrBodyTimeout)
	}
}

// deliver passes held bytes and the end of the body to the body callback.
func (x *h2x) deliver() {
	if x.onBody == nil || x.bodyPaused || x.closed {
		return
	}
	if len(x.held) > 0 {
		p := x.held
		x.held = nil
		x.onBody(p, false)
		x.hc.c.Consumed(x.id, len(p))
	}
	if x.bodyEnd && x.onBody != nil && !x.bodyPaused {
		f := x.onBody
		x.onBody = nil
		f(nil, true)
	}
}
