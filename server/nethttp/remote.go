package nethttp

import (
	"net/netip"
	"sync/atomic"
)

// remoteEntry is one client address and its string form.
type remoteEntry struct {
	ap netip.AddrPort
	s  string
}

// remoteCache maps recent client addresses to their string form (the Request's
// RemoteAddr), so that a keep-alive connection formats its address once instead
// of once per request. Direct-mapped by a hash of the address; a slot holds the
// latest address that hashed to it. Any loop reads and replaces slots atomically.
var remoteCache [1024]atomic.Pointer[remoteEntry]

// remoteString returns ap.String(), from the cache when the address is there.
func remoteString(ap netip.AddrPort) string {
	a16 := ap.Addr().As16()
	h := uint32(ap.Port())*0x9e3779b1 ^ uint32(a16[15])<<8 ^ uint32(a16[14])<<16 ^ uint32(a16[13])<<24
	slot := &remoteCache[(h^h>>16)%uint32(len(remoteCache))]
	if e := slot.Load(); e != nil && e.ap == ap {
		return e.s
	}
	e := &remoteEntry{ap: ap, s: ap.String()}
	slot.Store(e)
	return e.s
}
