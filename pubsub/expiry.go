package pubsub

import (
	"container/heap"
	"time"
)

// expiry is the end of a client's rights (a JWT's exp). It is checked when a
// message is to be queued to the client and when the client sends a command or gets
// a heartbeat, and the loop's expiry watch (loopHub.watchExpiry) ends an idle client
// at its time: one timer per loop for all its expiring clients, armed for the
// soonest, rather than one per connection (far-away timers would keep a slot of the
// loop's wheel each).
type expiry struct {
	at  int64  // Unix nanoseconds
	end func() // ends the connection (close 1008, the SSE stream's end)
	c   *client
	idx int // position in the loop's expiries heap; -1 when not in it
}

// expiring is a Grant whose rights end at a time (a JWT's exp): a connection it
// admitted ends then, subscriptions included.
type expiring interface{ expiry() time.Time }

// endAtExpiry makes the client end with end once g has expired, if g expires at all.
// It runs on the client's loop, after c.lh is set.
func (c *client) endAtExpiry(g Grant, end func()) {
	if e, ok := g.(expiring); ok {
		c.expiry = &expiry{at: e.expiry().UnixNano(), end: end, c: c, idx: -1}
		c.lh.watchExpiry(c.expiry)
	}
}

// expired reports whether the client's grant has expired by now (the loop's clock)
// and, the first time it has, ends the client: nothing more is queued to it, what
// waits is dropped, and its connection ends.
func (c *client) expired(now time.Time) bool {
	e := c.expiry
	if e == nil || now.UnixNano() < e.at {
		return false
	}
	c.expiry = nil
	c.lh.unwatchExpiry(e)
	c.closing = true
	c.clearWait()
	e.end()
	return true
}

// forgetExpiry takes a client that has ended off its loop's expiry watch.
func (c *client) forgetExpiry() {
	if e := c.expiry; e != nil {
		c.expiry = nil
		c.lh.unwatchExpiry(e)
	}
}

// expiries is a min-heap of expiries by time; owned by a loop.
type expiries []*expiry

func (h expiries) Len() int           { return len(h) }
func (h expiries) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiries) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *expiries) Push(x any) {
	e := x.(*expiry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *expiries) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}

// watchExpiry adds e to the loop's watch, arming the loop's expiry timer earlier if
// e is the soonest.
func (lh *loopHub) watchExpiry(e *expiry) {
	heap.Push(&lh.expiries, e)
	if lh.expiries[0] == e {
		lh.armExpiry()
	}
}

// unwatchExpiry removes e from the watch; the timer stays armed for what was the
// soonest and finds nothing due, or a later expiry, when it fires.
func (lh *loopHub) unwatchExpiry(e *expiry) {
	if e.idx >= 0 {
		heap.Remove(&lh.expiries, e.idx)
	}
	if len(lh.expiries) == 0 && lh.expTimer != nil {
		lh.expTimer.Stop()
		lh.expAt = 0
	}
}

// armExpiry arms the loop's expiry timer for the soonest expiry, unless it is armed
// for that time already.
func (lh *loopHub) armExpiry() {
	if len(lh.expiries) == 0 {
		return
	}
	at := lh.expiries[0].at
	if lh.expAt == at {
		return
	}
	l := lh.loop.Load()
	// At least a millisecond: a timer due now could fire again within this tick.
	d := max(time.Duration(at-l.Now().UnixNano()), time.Millisecond)
	if lh.expTimer == nil {
		lh.expTimer = l.AfterFunc(d, lh.expireDue)
	} else {
		lh.expTimer.Reset(d)
	}
	lh.expAt = at
}

// expireDue runs on the loop's expiry timer: it ends every client whose grant has
// expired and arms the timer for the next.
func (lh *loopHub) expireDue() {
	lh.expAt = 0
	now := lh.loop.Load().Now()
	for len(lh.expiries) > 0 && lh.expiries[0].at <= now.UnixNano() {
		e := heap.Pop(&lh.expiries).(*expiry)
		e.c.expired(now)
	}
	lh.armExpiry()
}
