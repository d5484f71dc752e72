package proxy

import "sync/atomic"

// Source is an upstream that can be replaced while it serves: a dynamic upstream
// whose servers were re-resolved. Each request takes the current upstream when it
// starts and finishes on it, so a replacement drops no request in flight; the old
// upstream's idle connections close at their idle timeout.
type Source struct {
	cur atomic.Pointer[Upstream]
}

// NewSource returns a source serving u.
func NewSource(u *Upstream) *Source {
	s := &Source{}
	s.cur.Store(u)
	return s
}

// Upstream returns the current upstream; safe from any goroutine.
func (s *Source) Upstream() *Upstream { return s.cur.Load() }

// Set makes u the current upstream and returns the one it replaces.
func (s *Source) Set(u *Upstream) *Upstream { return s.cur.Swap(u) }

// NewFromSource returns the proxy action forwarding to src's current upstream
// with the rewriting of r.
func NewFromSource(src *Source, r Route) *Handler {
	h := New(src.Upstream(), r)
	h.src = src
	return h
}
