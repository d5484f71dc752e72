package supervisor

import "time"

// backoff spaces the restarts of one crashing worker: the first restart
// waits min, each further one twice as long up to max, and a worker that ran
// for at least stable before it died starts over at min.
type backoff struct {
	min, max, stable time.Duration
	cur              time.Duration // the last delay handed out; 0 before the first
}

// defaultBackoff is the restart policy of worker processes.
func defaultBackoff() backoff {
	return backoff{min: 100 * time.Millisecond, max: 10 * time.Second, stable: 10 * time.Second}
}

// next returns how long to wait before restarting a worker that ran for
// uptime before it exited.
func (b *backoff) next(uptime time.Duration) time.Duration {
	switch {
	case b.cur == 0 || uptime >= b.stable:
		b.cur = b.min
	case b.cur < b.max:
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}
