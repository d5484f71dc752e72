package engine

// A hashed timing wheel gives each loop O(1) timer add and cancel with no
// time.Timer and no goroutine per connection. Each connection has at most one timer;
// the protocol moves it between phases (header, body, idle, write). Entries whose
// deadline lies more than one revolution ahead stay in their slot until their tick
// comes round.

const (
	tickNanos  = int64(10e6) // 10 ms resolution
	wheelSlots = 1024        // one revolution is ~10 s
	wheelMask  = wheelSlots - 1
)

// wheel is owned by one loop.
type wheel struct {
	slots [wheelSlots]*Conn
	cur   int64 // last tick processed
	base  int64 // tick that relative deadline 0 stands for; deadlines are >= 1
	count int   // armed timers
}

func (w *wheel) init(nowNano int64) {
	w.cur = nowNano / tickNanos
	w.base = w.cur - 1
}

// abs turns a connection's relative deadline into an absolute tick.
func (w *wheel) abs(c *Conn) int64 { return int64(c.tdeadline) + w.base }

// add arms c's timer for deadline (unix nanoseconds), replacing an earlier one.
func (w *wheel) add(c *Conn, deadline int64) {
	if c.tdeadline != 0 {
		w.remove(c)
	}
	t := deadline / tickNanos
	if t <= w.cur {
		t = w.cur + 1
	}
	c.tdeadline = uint32(t - w.base)
	s := &w.slots[t&wheelMask]
	c.tprev = nil
	c.tnext = *s
	if *s != nil {
		(*s).tprev = c
	}
	*s = c
	w.count++
}

// remove disarms c's timer if it is armed.
func (w *wheel) remove(c *Conn) {
	if c.tdeadline == 0 {
		return
	}
	if c.tprev != nil {
		c.tprev.tnext = c.tnext
	} else {
		w.slots[w.abs(c)&wheelMask] = c.tnext
	}
	if c.tnext != nil {
		c.tnext.tprev = c.tprev
	}
	c.tnext, c.tprev, c.tdeadline = nil, nil, 0
	w.count--
}

// advance processes every tick up to nowNano and calls fire for each expired
// connection, after unlinking it (fire may re-arm it).
func (w *wheel) advance(nowNano int64, fire func(*Conn)) {
	target := nowNano / tickNanos
	if target-w.cur > wheelSlots {
		w.cur = target - wheelSlots
	}
	var expired *Conn
	for w.cur < target {
		w.cur++
		for c := w.slots[w.cur&wheelMask]; c != nil; {
			next := c.tnext
			if w.abs(c) <= w.cur {
				w.remove(c)
				c.tnext = expired
				expired = c
			}
			c = next
		}
	}
	for expired != nil {
		c := expired
		expired = c.tnext
		c.tnext = nil
		fire(c)
	}
}

// nextWaitMillis is how long the loop may sleep before the next tick matters, or -1.
func (w *wheel) nextWaitMillis(nowNano int64) int {
	if w.count == 0 {
		return -1
	}
	ms := int(((w.cur+1)*tickNanos - nowNano) / 1e6)
	if ms < 1 {
		ms = 1
	}
	return ms
}
