package nethttp

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// reqContext is a request's context: it is cancelled (Err = context.Canceled)
// when the client goes away, the stream is reset, the handler returns, or the
// adapter's base context (Options.BaseContext) is done. Its values are those
// net/http's server gives (http.ServerContextKey, http.LocalAddrContextKey) and
// the base context's; its deadline is the base context's. It lives inside the
// exchange, so a request costs no context allocation; its Done channel is made
// only when asked for. It implements AfterFunc, which package context uses to
// cancel contexts derived from it (context.WithTimeout(r.Context(), d), say)
// without a goroutine each. x and base are set before the handler runs; mu
// guards every field after it.
type reqContext struct {
	x    *exchange       // the request's exchange, for the local address; nil in unit tests
	base context.Context // Options.BaseContext's, or nil
	// vals is base without its cancellation, for Value: package context finds a
	// parent's cancellation through Value, and must not find base's in ours
	// (context.Cause of a request cancelled on its own would be base's cause).
	vals  context.Context
	mu    sync.Mutex
	done  chan struct{}      // made on demand; closed by cancel
	err   error              // set by the first cancel
	funcs map[*func()]func() // AfterFunc callbacks not yet run or stopped
}

var _ context.Context = (*reqContext)(nil)

// closedDone is the Done channel of a context cancelled before anyone asked.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Deadline returns the base context's deadline, if any.
func (c *reqContext) Deadline() (time.Time, bool) {
	if c.base != nil {
		return c.base.Deadline()
	}
	return time.Time{}, false
}

// Value returns the *http.Server stand-in of the adapter for
// http.ServerContextKey, the connection's local address (a *net.TCPAddr) for
// http.LocalAddrContextKey, and the base context's value for any other key.
func (c *reqContext) Value(key any) any {
	if x := c.x; x != nil {
		switch key {
		case http.ServerContextKey:
			return x.srv
		case http.LocalAddrContextKey:
			if a := x.localAddr(); a != nil {
				return a
			}
			return nil
		}
	}
	if c.vals != nil {
		return c.vals.Value(key)
	}
	return nil
}

// setBase makes base the context the request's derives from (Options.BaseContext),
// with vals, context.WithoutCancel(base), made once for every request.
func (c *reqContext) setBase(base, vals context.Context) { c.base, c.vals = base, vals }

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

// Err returns context.Canceled once the context is cancelled (the base context's
// error when that one ended it), else nil.
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
func (c *reqContext) cancel() { c.cancelWith(context.Canceled) }

// cancelWith cancels the context with err as its Err (the base context's, when
// that one ended it); later calls do nothing. Any goroutine.
func (c *reqContext) cancelWith(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
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
