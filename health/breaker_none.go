package health

// NoBreaker is the breaker of a group without one: it always allows.
type NoBreaker struct{}

var _ Breaker = NoBreaker{}

// Allow always reports true.
func (NoBreaker) Allow() (Ticket, bool) { return 0, true }

// Record does nothing.
func (NoBreaker) Record(Ticket, Outcome) {}

// State is always Closed.
func (NoBreaker) State() BreakerState { return Closed }
