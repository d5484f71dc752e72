package nethttp

import (
	"context"
	"sync"
	"time"
)

// reqContext is a request's context: it has no deadline and no values, and is
// cancelled (Err = context.Canceled) when the client goes away, the stream is
// reset, or the handler returns. It lives inside the exchange, so a request costs
// no context allocation; its Done channel is made only when asked for. It
// implements AfterFunc, which package context uses to cancel contexts derived
// from it (context.WithTimeout(r.Context(), d), say) without a goroutine each.
// mu guards every field after it.
type reqContext struct {
	mu    sync.Mutex
	done  chan struct{}      // made on demand; closed by cancel
	err   error              // set by the first cancel
	funcs map[*func()]func() // AfterFunc callbacks not yet run or stopped
}

var _ context.Context = (*reqContext)(nil)

// closedDone is the Done channel of a context cancelled before anyone asked.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *reqContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *reqContext) Value(any) any               { return nil }

// Done returns a channel closed once the context is cancelled.
func (c *reqContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedDone
		}
		c.done = make(chan struct{})
	}
	return c.done
}

// Err returns context.Canceled once the context is cancelled, else nil.
func (c *reqContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc arranges for f to run once the context is cancelled (at once, on its
// own goroutine, if it already is); the returned stop prevents a pending f from
// running and reports whether it did.
func (c *reqContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		// Not on this goroutine: package context calls AfterFunc with a lock held
		// that f takes.
		go f()
		return func() bool { return false }
	}
	if c.funcs == nil {
		c.funcs = map[*func()]func(){}
	}
	key := &f
	c.funcs[key] = f
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, pending := c.funcs[key]
		delete(c.funcs, key)
		return pending
	}
}

// cancel cancels the context; later calls do nothing. Any goroutine.
func (c *reqContext) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	funcs := c.funcs
	c.funcs = nil
	c.mu.Unlock()
	for _, f := range funcs {
		f()
	}
}
