package health

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// BreakerOptions configure a RatioBreaker.
type BreakerOptions struct {
	// Window is the sliding window the failure ratio is computed over; it is
	// kept as ten buckets of Window/10.
	Window time.Duration
	// MinRequests is the fewest outcomes in the window before the breaker may
	// open.
	MinRequests int
	// FailureRatio (0-1] opens the breaker when failures/outcomes reach it.
	FailureRatio float64
	// OpenFor is how long the breaker stays open before it lets probes through.
	OpenFor time.Duration
	// HalfOpenProbes is how many attempts a half-open breaker admits; that many
	// successes close it, one failure opens it again.
	HalfOpenProbes int
}

func (o *BreakerOptions) validate() error {
	switch {
	case o.Window <= 0 || o.OpenFor <= 0:
		return fmt.Errorf("breaker window and open_for must be positive")
	case o.FailureRatio <= 0 || o.FailureRatio > 1:
		return fmt.Errorf("breaker failure_ratio must be in (0, 1]")
	case o.MinRequests < 1 || o.HalfOpenProbes < 1:
		return fmt.Errorf("breaker min_requests and half_open_probes must be at least 1")
	}
	return nil
}

// breakerBuckets is the number of buckets of the sliding window.
const breakerBuckets = 10

// BreakerChange describes a transition for the log line and counters: the state
// left, the state entered and the counts that caused it.
type BreakerChange struct {
	From, To           BreakerState
	Requests, Failures int // in the window (closed → open) or among the probes
}

// RatioBreaker opens on a failure ratio over a sliding window. The closed state's
// Allow is one atomic load; Record takes a mutex (held for a few additions), which
// is per server, so loops contend only when they record on the same server at the
// same instant. Each transition starts a new epoch; an attempt's ticket is the
// epoch it was admitted in, and an outcome whose epoch has ended is left out
// (an attempt admitted while closed that ends while half-open is not a probe).
type RatioBreaker struct {
	o        BreakerOptions
	onChange func(BreakerChange) // called outside mu
	st       atomic.Uint64       // epoch<<2 | BreakerState; written with mu held

	mu       sync.Mutex
	buckets  [breakerBuckets]struct{ at, ok, fail int64 } // at: bucket start in unix ns
	openedAt time.Time
	probes   int // admitted while half-open
	probeOK  int
	now      func() time.Time
}

var _ Breaker = (*RatioBreaker)(nil)

// NewRatioBreaker returns a closed breaker; onChange (may be nil) hears of every
// transition.
func NewRatioBreaker(o BreakerOptions, onChange func(BreakerChange)) *RatioBreaker {
	return &RatioBreaker{o: o, onChange: onChange, now: time.Now}
}

// load returns the current state and its epoch's ticket.
func (b *RatioBreaker) load() (BreakerState, Ticket) {
	v := b.st.Load()
	return BreakerState(v & 3), Ticket(v >> 2)
}

// enter moves to state s in a new epoch; called with mu held.
func (b *RatioBreaker) enter(s BreakerState) {
	b.st.Store((b.st.Load()>>2+1)<<2 | uint64(s))
}

// Allow admits every attempt while closed, none while open, and up to
// HalfOpenProbes unfinished ones while half-open.
func (b *RatioBreaker) Allow() (Ticket, bool) {
	if s, t := b.load(); s == Closed {
		return t, true
	}
	switch b.State() {
	case Closed:
		_, t := b.load()
		return t, true
	case Open:
		return 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s, t := b.load()
	if s != HalfOpen {
		return t, s == Closed
	}
	if b.probes >= b.o.HalfOpenProbes {
		return 0, false
	}
	b.probes++
	return t, true
}

// State returns the current state, moving an open breaker to half-open once
// OpenFor has passed.
func (b *RatioBreaker) State() BreakerState {
	s, _ := b.load()
	if s != Open {
		return s
	}
	b.mu.Lock()
	if s, _ = b.load(); s != Open || b.now().Sub(b.openedAt) < b.o.OpenFor {
		b.mu.Unlock()
		return s
	}
	b.enter(HalfOpen)
	b.probes, b.probeOK = 0, 0
	b.mu.Unlock()
	b.changed(BreakerChange{From: Open, To: HalfOpen})
	return HalfOpen
}

// Record adds the outcome of an attempt admitted with ticket t: to the window
// while closed, to the probes while half-open. An outcome from an earlier epoch
// is left out: it says how the server did before the last transition, and as a
// probe's it closed a half-open breaker that no probe had passed, or let more
// than HalfOpenProbes attempts in at once.
func (b *RatioBreaker) Record(t Ticket, o Outcome) {
	b.mu.Lock()
	var ch *BreakerChange
	s, cur := b.load()
	if t != cur {
		s = Open // stale: counted nowhere
	}
	switch s {
	case Closed:
		if o == Cancelled {
			break
		}
		now := b.now().UnixNano()
		span := int64(b.o.Window) / breakerBuckets
		start := now - now%span
		bk := &b.buckets[(now/span)%breakerBuckets]
		if bk.at != start {
			bk.at, bk.ok, bk.fail = start, 0, 0
		}
		if o == Failed {
			bk.fail++
		} else {
			bk.ok++
			break
		}
		var total, fail int64
		for i := range b.buckets {
			if now-b.buckets[i].at < int64(b.o.Window) {
				total += b.buckets[i].ok + b.buckets[i].fail
				fail += b.buckets[i].fail
			}
		}
		if total >= int64(b.o.MinRequests) && float64(fail) >= b.o.FailureRatio*float64(total) {
			b.open()
			ch = &BreakerChange{From: Closed, To: Open, Requests: int(total), Failures: int(fail)}
		}
	case HalfOpen:
		switch o {
		case Cancelled:
			b.probes = max(b.probes-1, 0)
		case Failed:
			ch = &BreakerChange{From: HalfOpen, To: Open, Requests: b.probeOK + 1, Failures: 1}
			b.open()
		default:
			b.probeOK++
			if b.probeOK >= b.o.HalfOpenProbes {
				ch = &BreakerChange{From: HalfOpen, To: Closed, Requests: b.probeOK}
				b.enter(Closed)
				b.buckets = [breakerBuckets]struct{ at, ok, fail int64 }{}
			}
		}
	}
	b.mu.Unlock()
	if ch != nil {
		b.changed(*ch)
	}
}

// open moves to Open; called with mu held.
func (b *RatioBreaker) open() {
	b.enter(Open)
	b.openedAt = b.now()
	b.probes, b.probeOK = 0, 0
}

func (b *RatioBreaker) changed(c BreakerChange) {
	if b.onChange != nil {
		b.onChange(c)
	}
}
