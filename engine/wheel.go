package engine

// A hashed timing wheel gives each loop O(1) timer add and cancel with no
// time.Timer and no goroutine per connection. It holds two kinds of entries: each
// connection's own timer (SetTimeout; the links live in the Conn, so the common case
// allocates nothing), which the protocol moves between phases (header, body, idle),
// and any number of Timer values (AfterFunc, the write timeout of a connection).
//
// Ticks are grouped in revolutions of wheelSlots ticks (~10 s). A connection's timer due in
// the current revolution is "near": it sits in the slot of its tick, which the loop visits
// every tick. A later one is "far": it sits in the far slot of its revolution and is moved
// to the near slots (cascaded) when its revolution begins. So connections whose timeouts
// lie beyond the current revolution (idle keep-alive ones, seconds to hours away) occupy no
// near slot, and a loop holding many of them wakes once a revolution instead of every 10 ms
// to skip over them; a far timer is looked at once per wheelSlots revolutions until its own.
// Whether a connection's timer is far follows from its tick and cur alone, so the Conn
// carries no flag. Timer values have one level: one whose deadline lies more than a
// revolution ahead stays in its slot until its tick comes round (they are few per loop, or
// fire often: a WebSocket ping, a write timeout that progress re-arms).

const (
	tickNanos  = int64(10e6)    // 10 ms resolution
	wheelBits  = 10             // ticks per revolution: 1 << wheelBits
	wheelSlots = 1 << wheelBits // one revolution is ~10 s
	wheelMask  = wheelSlots - 1
)

// wheel is owned by one loop.
type wheel struct {
	slots  [wheelSlots]*Conn  // near connection timers, by tick
	far    [wheelSlots]*Conn  // far connection timers, by revolution
	tslots [wheelSlots]*Timer // Timer values, by tick
	cur    int64              // last tick processed
	base   int64              // tick that relative deadline 0 stands for; deadlines are >= 1
	count  int                // armed timers of both kinds, near and far
	nfar   int                // connection timers in the far slots
	empty  int64              // no near slot is occupied for the ticks in (cur, empty): where nextWaitMillis resumes its search
}

// rev returns the revolution tick t belongs to.
func rev(t int64) int64 { return t >> wheelBits }

// isFar reports whether a connection timer due at tick t belongs in the far slots now:
// its revolution is not the current one.
func (w *wheel) isFar(t int64) bool { return rev(t) > rev(w.cur) }

// list returns the list a connection timer due at tick t belongs in now.
func (w *wheel) list(t int64) **Conn {
	if w.isFar(t) {
		return &w.far[rev(t)&wheelMask]
	}
	return &w.slots[t&wheelMask]
}

// link puts c, armed for tick t (c.tdeadline), at the head of s, its list.
func (w *wheel) link(c *Conn, s **Conn) {
	c.tprev = nil
	c.tnext = *s
	if *s != nil {
		(*s).tprev = c
	}
	*s = c
}

// unlink takes c out of s, its list.
func (w *wheel) unlink(c *Conn, s **Conn) {
	if c.tprev != nil {
		c.tprev.tnext = c.tnext
	} else {
		*s = c.tnext
	}
	if c.tnext != nil {
		c.tnext.tprev = c.tprev
	}
	c.tnext, c.tprev = nil, nil
}

// cascade moves the connection timers of far slot i whose revolution is at most upTo to
// the near slots. It runs once cur has entered revolution upTo, so that they are near by
// then (and list no longer names the far list they are in).
func (w *wheel) cascade(i int64, upTo int64) {
	for c := w.far[i]; c != nil; {
		next := c.tnext
		if t := w.abs(c); rev(t) <= upTo {
			w.unlink(c, &w.far[i])
			w.nfar--
			w.link(c, &w.slots[t&wheelMask])
			w.occupied(t)
		}
		c = next
	}
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
	t := w.tick(deadline)
	c.tdeadline = uint32(t - w.base)
	w.link(c, w.list(t))
	if w.isFar(t) {
		w.nfar++
	} else {
		w.occupied(t)
	}
	w.count++
}

// remove disarms c's timer if it is armed.
func (w *wheel) remove(c *Conn) {
	if c.tdeadline == 0 {
		return
	}
	t := w.abs(c)
	w.unlink(c, w.list(t))
	if w.isFar(t) {
		w.nfar--
	}
	c.tdeadline = 0
	w.count--
}

// tick turns a deadline (unix nanoseconds) into the first tick at or after it (so
// that nothing fires early), never the current one.
func (w *wheel) tick(deadline int64) int64 {
	t := (deadline + tickNanos - 1) / tickNanos
	if t <= w.cur {
		t = w.cur + 1
	}
	return t
}

// occupied notes that tick t's slot now holds an entry: the search for the next
// occupied slot must not skip it. A tick more than one revolution ahead occupies the
// slot at its nearer tick of the same position.
func (w *wheel) occupied(t int64) {
	if near := w.cur + 1 + (t-w.cur-1)&wheelMask; near < w.empty {
		w.empty = near
	}
}

// addTimer arms t for deadline (unix nanoseconds); t must not be armed.
func (w *wheel) addTimer(t *Timer, deadline int64) {
	t.at = w.tick(deadline)
	w.occupied(t.at)
	s := &w.tslots[t.at&wheelMask]
	t.prev = nil
	t.next = *s
	if *s != nil {
		(*s).prev = t
	}
	*s = t
	w.count++
}

// removeTimer disarms t if it is armed and reports whether it was.
func (w *wheel) removeTimer(t *Timer) bool {
	if t.at == 0 {
		return false
	}
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		w.tslots[t.at&wheelMask] = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.next, t.prev, t.at = nil, nil, 0
	w.count--
	return true
}

// advance processes every tick up to nowNano and calls fire for each expired
// connection and fireTimer for each expired Timer, after unlinking it (either may
// re-arm it).
func (w *wheel) advance(nowNano int64, fire func(*Conn), fireTimer func(*Timer)) {
	target := nowNano / tickNanos
	if target-w.cur > wheelSlots {
		// The loop did not run for more than a revolution: every near slot is visited
		// below, and every far timer that is near from the new cur on is cascaded first.
		w.cur = target - wheelSlots
		if w.nfar > 0 {
			for i := range int64(wheelSlots) {
				w.cascade(i, rev(w.cur))
			}
		}
	}
	var expired *Conn
	var expiredT *Timer
	for w.cur < target {
		w.cur++
		if w.cur&wheelMask == 0 && w.nfar > 0 {
			// A revolution begins: its connection timers become near, before its first
			// tick is looked at.
			w.cascade(rev(w.cur)&wheelMask, rev(w.cur))
		}
		for c := w.slots[w.cur&wheelMask]; c != nil; {
			next := c.tnext
			if w.abs(c) <= w.cur {
				w.remove(c)
				c.tnext = expired
				expired = c
			}
			c = next
		}
		for t := w.tslots[w.cur&wheelMask]; t != nil; {
			next := t.next
			if t.at <= w.cur {
				w.removeTimer(t)
				t.next = expiredT
				expiredT = t
			}
			t = next
		}
	}
	for expired != nil {
		c := expired
		expired = c.tnext
		c.tnext = nil
		fire(c)
	}
	for expiredT != nil {
		t := expiredT
		expiredT = t.next
		t.next = nil
		fireTimer(t)
	}
}

// nextWaitMillis is how long the loop may sleep before the next near slot that holds a
// timer comes due, or -1 when no timer is armed. The search looks one revolution ahead at
// most: a Timer further away sits in a nearer slot and costs one early wake-up per
// revolution. With far connection timers armed it stops at the next revolution's first
// tick, whose cascade may bring one due at once. It reads no clock and makes no system
// call, and resumes from its last result, so a busy loop does not rescan the wheel every
// iteration.
func (w *wheel) nextWaitMillis(nowNano int64) int {
	if w.count == 0 {
		return -1
	}
	// Resume where the last search stopped: the ticks before w.empty were empty then,
	// and occupied lowers w.empty for every entry added since. Each slot is so looked
	// at about once per revolution, not once per loop iteration.
	end := w.cur + wheelSlots
	if w.nfar > 0 {
		end = min(end, (rev(w.cur)+1)<<wheelBits)
	}
	// The last search may have gone past the next revolution's first tick while no
	// connection timer was far (a far one arms no near slot, so occupied did not pull
	// w.empty back): the wake-up for that revolution's cascade must not be skipped.
	t := min(max(w.empty, w.cur+1), end)
	for ; t < end; t++ {
		i := t & wheelMask
		if w.slots[i] != nil || w.tslots[i] != nil {
			break
		}
	}
	w.empty = t
	ms := (t*tickNanos - nowNano + 1e6 - 1) / 1e6
	if ms < 1 {
		ms = 1
	}
	return int(ms)
}
