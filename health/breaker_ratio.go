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
// same instant.
type RatioBreaker struct {
	o        BreakerOptions
	onChange func(BreakerChange) // called outside mu
	state    atomic.Uint32       // a BreakerState

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

// Allow admits every attempt while closed, none while open, and up to
// HalfOpenProbes unfinished ones while half-open.
func (b *RatioBreaker) Allow() bool {
	switch b.State() {
	case Closed:
		return true
	case Open:
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if BreakerState(b.state.Load()) != HalfOpen {
		return BreakerState(b.state.Load()) == Closed
	}
	if b.probes >= b.o.HalfOpenProbes {
		return false
	}
	b.probes++
	return true
}

// State returns the current state, moving an open breaker to half-open once
// OpenFor has passed.
func (b *RatioBreaker) State() BreakerState {
	s := BreakerState(b.state.Load())
	if s != Open {
		return s
	}
	b.mu.Lock()
	if BreakerState(b.state.Load()) != Open || b.now().Sub(b.openedAt) < b.o.OpenFor {
		s = BreakerState(b.state.Load())
		b.mu.Unlock()
		return s
	}
	b.state.Store(uint32(HalfOpen))
	b.probes, b.probeOK = 0, 0
	b.mu.Unlock()
	b.changed(BreakerChange{From: Open, To: HalfOpen})
	return HalfOpen
}

// Record adds an outcome: to the window while closed, to the probes while
// half-open.
func (b *RatioBreaker) Record(o Outcome) {
	b.mu.Lock()
	var ch *BreakerChange
	switch BreakerState(b.state.Load()) {
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
				b.state.Store(uint32(Closed))
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
	b.state.Store(uint32(Open))
	b.openedAt = b.now()
	b.probes, b.probeOK = 0, 0
}

func (b *RatioBreaker) changed(c BreakerChange) {
	if b.onChange != nil {
		b.onChange(c)
	}
}
