package nethttp

import (
	"errors"
	"math"
	"sync/atomic"
	"time"
)

// errHandlerTimeout is what the handler's writes return, and the close reason of
// its connection, once Options.ResponseTimeout expired.
var errHandlerTimeout = errors.New("nethttp: handler made no progress within the response timeout")

// epoch is the origin of the monotonic clock the watchdog reads.
var epoch = time.Now()

// watch is an exchange's bound on its handler's silence (Options.ResponseTimeout).
// The handler goroutine records progress with one atomic store; the timer, on its
// own goroutine, checks it when it fires and re-arms for the rest of the period,
// so a progressing handler costs no timer reset per write.
type watch struct {
	d      time.Duration
	timer  *time.Timer
	active atomic.Int64 // time.Since(epoch) of the handler's last progress
	done   atomic.Bool  // the handler returned or hijacked: never expire
}

// progress notes that the handler made progress; on the handler goroutine.
func (x *exchange) progress() {
	if x.watch.d > 0 {
		x.watch.active.Store(int64(time.Since(epoch)))
	}
}

// startWatch arms the bound when the adapter has one; on the handler goroutine,
// before the handler runs.
func (x *exchange) startWatch() {
	w := &x.watch
	if w.d <= 0 {
		return
	}
	w.active.Store(int64(time.Since(epoch)))
	// Armed once w.timer is set: checkWatch reads it.
	w.timer = time.AfterFunc(time.Duration(math.MaxInt64), x.checkWatch)
	w.timer.Reset(w.d)
}

// stopWatch disarms the bound (the handler returned or took the connection).
func (x *exchange) stopWatch() {
	w := &x.watch
	if w.timer == nil || w.done.Swap(true) {
		return
	}
	w.timer.Stop()
}

// checkWatch runs when the timer fires: it re-arms for what is left of the period
// if the handler progressed meanwhile or is waiting for the client, else expires.
func (x *exchange) checkWatch() {
	w := &x.watch
	if w.done.Load() {
		return
	}
	idle := time.Since(epoch) - time.Duration(w.active.Load())
	if left := w.d - idle; left > 0 || x.pipe.waiting() {
		if left <= 0 {
			left = w.d
		}
		w.timer.Reset(left)
		return
	}
	// The pipe fails first: a handler woken by the cancelled context must find its
	// writes failing, not end the response as if it had completed.
	x.pipe.fail(errHandlerTimeout, errHandlerTimeout)
	x.ctx.cancel()
	x.postRaw(func() {
		// After every piece of output the handler posted before its writes failed
		// (its final one too, if it returned meanwhile).
		if x.gone() || x.ex.Ended() {
			return
		}
		if x.c != nil {
			x.c.SetKeepAlive(false)
			if !x.c.HeadSent() {
				x.c.Error(504, "handler did not respond in time")
				return
			}
			x.c.Conn().Abort(errHandlerTimeout)
			return
		}
		if !x.ex.HeadSent() {
			x.ex.Error(504, "handler did not respond in time")
			return
		}
		x.stream().Reset()
	})
}
