package engine

import "time"

// Timer is a cancellable timer on a loop's timing wheel, made by Loop.AfterFunc. A
// loop may hold any number of them (a protocol's per-stream or ping timers). Its
// methods must be called on the loop that made it. Resolution is the wheel's tick
// (10 ms): a timer fires on the first tick at or after its deadline.
type Timer struct {
	next, prev *Timer // wheel slot links; owned by the loop, like every field
	at         int64  // absolute tick while armed, 0 when not
	loop       *Loop
	f          func() // what to run; nil for a connection's write timer
	c          *Conn  // the connection whose write timer this is, when f is nil
}

// AfterFunc arms a timer that runs f on the loop after d and returns it, so that it
// can be stopped or reset. It must be called on the loop (from a Handler callback
// or a closure passed to Post).
func (l *Loop) AfterFunc(d time.Duration, f func()) *Timer {
	t := &Timer{loop: l, f: f}
	l.wheel.addTimer(t, l.nowNano+int64(d))
	return t
}

// After runs f on the loop after d. It is AfterFunc without the handle.
func (l *Loop) After(d time.Duration, f func()) { l.AfterFunc(d, f) }

// Stop disarms the timer and reports whether it was armed (false once it has fired
// or been stopped).
func (t *Timer) Stop() bool { return t.loop.wheel.removeTimer(t) }

// Reset re-arms the timer to fire after d from now, whether or not it was armed,
// and reports whether it was.
func (t *Timer) Reset(d time.Duration) bool {
	was := t.loop.wheel.removeTimer(t)
	t.loop.wheel.addTimer(t, t.loop.nowNano+int64(d))
	return was
}

// fireLoopTimer runs an expired Timer: its function, or the write-progress check of
// its connection.
func (l *Loop) fireLoopTimer(t *Timer) {
	if t.f != nil {
		t.f()
		return
	}
	l.checkWriteProgress(t.c)
}
