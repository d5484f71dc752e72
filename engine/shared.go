package engine

import "sync/atomic"

// Shared is an immutable buffer with an atomic reference count, so that one message
// (a pub/sub payload, a cached body) can be queued to many connections, on any
// loops, without a copy. NewShared hands the creator one reference; WriteShared
// takes one per connection and gives it back once that connection has sent the
// bytes or closed. When the count reaches zero, the free function runs once, on
// whichever goroutine dropped the last reference. The bytes must not change while
// any reference is held.
type Shared struct {
	b    []byte
	refs atomic.Int64
	free func()
	rel  func() // s.Release, bound once so that queueing allocates nothing
}

// NewShared wraps b with a reference count of one (the caller's). free, if not
// nil, runs once when the last reference is released.
func NewShared(b []byte, free func()) *Shared {
	s := &Shared{b: b, free: free}
	s.refs.Store(1)
	s.rel = s.Release
	return s
}

// Bytes returns the shared bytes; they must not be modified.
func (s *Shared) Bytes() []byte { return s.b }

// Retain adds a reference and returns s. Retaining a buffer already released to
// zero is a programming error and panics.
func (s *Shared) Retain() *Shared {
	for {
		n := s.refs.Load()
		if n <= 0 {
			panic("engine: Retain of a released Shared buffer")
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return s
		}
	}
}

// Release drops a reference; the last one runs the free function.
func (s *Shared) Release() {
	switch n := s.refs.Add(-1); {
	case n == 0:
		if s.free != nil {
			s.free()
		}
	case n < 0:
		panic("engine: Shared buffer released more often than retained")
	}
}

// WriteShared queues s's bytes without copying them, holding a reference until
// they have been sent or the connection has closed. On a closed connection it
// returns ErrClosed and holds nothing.
func (c *Conn) WriteShared(s *Shared) error {
	if c.flags&(fClosed|fBroken) != 0 {
		return ErrClosed
	}
	s.Retain()
	return c.WriteRef(s.b, s.rel)
}

// WriteRef queues b without copying it; release, if not nil, is called exactly
// once, on the loop, when b has been sent or the connection closed (at once on a
// closed connection, which returns ErrClosed). b must not change until then. It is
// the primitive under WriteShared, for callers with their own reference counting.
// Like Write, it counts toward Buffered and the high-water mark.
func (c *Conn) WriteRef(b []byte, release func()) error {
	if c.flags&(fClosed|fBroken) != 0 || len(b) == 0 {
		if release != nil {
			release()
		}
		if c.flags&(fClosed|fBroken) != 0 {
			return ErrClosed
		}
		return nil
	}
	q := c.queue()
	q.appendRef(b, release)
	return c.queuedMem(q)
}
