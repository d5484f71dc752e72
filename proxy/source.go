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

// NewFromSource returns the proxy action forwarding to src's current upstream
// with the rewriting of r.
func NewFromSource(src *Source, r Route) *Handler {
	h := New(src.Upstream(), r)
	h.src = src
	return h
}

// Adopt lets u take over prev's idle pooled connections to the servers both have:
// when a loop finds no idle connection to a server, it moves one from prev's pool
// on the same loop (both pools are that loop's), so a reload or a re-resolution
// that keeps a server keeps its warm connections. Only the latest predecessor is
// kept. Call it before u serves.
func (u *Upstream) Adopt(prev *Upstream) {
	if prev == nil || prev == u || len(prev.loops) != len(u.loops) {
		return
	}
	prev.prev.Store(nil)
	u.prev.Store(prev)
}

// Set makes u the current upstream, adopting the idle connections of the one it
// replaces, and returns that one.
func (s *Source) Set(u *Upstream) *Upstream {
	old := s.cur.Swap(u)
	u.Adopt(old)
	return old
}

// adopt moves an idle connection to server srv from the predecessor's pool on
// this loop, or returns nil. Runs on the loop owning ls.
func (ls *loopState) adopt(srv int) *upConn {
	prev := ls.u.prev.Load()
	if prev == nil {
		return nil
	}
	var pls *loopState
	for i, l := range ls.u.loops {
		if l == ls {
			pls = prev.loops[i]
			break
		}
	}
	addr := ls.u.opts.Servers[srv].Addr
	psrv := -1
	for i, s := range prev.opts.Servers {
		if s.Addr == addr {
			psrv = i
			break
		}
	}
	if pls == nil || psrv < 0 {
		return nil
	}
	uc := pls.popIdle(psrv)
	if uc == nil {
		return nil
	}
	uc.connClosed()
	uc.ls, uc.srv = ls, srv
	ls.connDialing(srv)
	uc.connOpened()
	return uc
}
