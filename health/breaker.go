package health

// Breaker is a circuit breaker for one server. Allow says whether an attempt may
// go to the server now (a half-open breaker admits a few probes) and returns the
// attempt's ticket; every allowed attempt ends with exactly one Record of its
// outcome with that ticket. The ticket names the state the attempt was admitted
// in, so that an attempt admitted before a transition (one in flight while the
// breaker opened) is not taken for one of the half-open probes when it ends.
// Implementations are safe from any goroutine.
type Breaker interface {
	Allow() (Ticket, bool)
	Record(t Ticket, o Outcome)
	// State returns the breaker's state, first moving an open breaker whose
	// open time has passed to half-open.
	State() BreakerState
}

// Ticket identifies the breaker state an attempt was admitted in (the breaker's
// count of transitions at the time).
type Ticket uint64

// Outcome is how an attempt ended, for breakers and outlier detection.
type Outcome uint8

// Outcomes.
const (
	// Succeeded is a response below 500.
	Succeeded Outcome = iota
	// Failed is a 5xx response or a failed exchange (connect failure, reset,
	// timeout, invalid response).
	Failed
	// Cancelled is an attempt that ended without a verdict on the server (the
	// client went away, a pooled connection lost the keep-alive race).
	Cancelled
)

// BreakerState is closed (traffic flows), open (refused) or half-open (probing).
type BreakerState uint8

// Breaker states.
const (
	Closed BreakerState = iota
	Open
	HalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "closed"
}
