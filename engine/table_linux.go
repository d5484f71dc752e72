//go:build linux && !galenet

package engine

import "sync/atomic"

// connTable maps descriptor numbers to connections for every loop of an engine.
// Descriptor numbers are process-wide, so one table serves all loops: each slot is
// written only by the loop that owns that descriptor's connection (atomically, since
// a shutdown scan reads all slots), and chunks of
// slots are allocated on first use and published atomically, so the table never
// reallocates and an idle slot costs 8 bytes.
type connTable struct {
	chunks [maxFDs / chunkSlots]atomic.Pointer[[chunkSlots]atomic.Pointer[Conn]]
}

const (
	chunkSlots = 1024
	maxFDs     = 1 << 22 // descriptors numbered above this are refused
)

func (t *connTable) get(fd int) *Conn {
	if fd < 0 || fd >= maxFDs {
		return nil
	}
	ch := t.chunks[fd/chunkSlots].Load()
	if ch == nil {
		return nil
	}
	return ch[fd%chunkSlots].Load()
}

func (t *connTable) set(fd int, c *Conn) {
	p := &t.chunks[fd/chunkSlots]
	ch := p.Load()
	if ch == nil {
		fresh := new([chunkSlots]atomic.Pointer[Conn])
		if !p.CompareAndSwap(nil, fresh) {
			ch = p.Load()
		} else {
			ch = fresh
		}
	}
	ch[fd%chunkSlots].Store(c)
}

// each calls f for every connection in the table. Slots of other loops may change
// concurrently; callers filter by loop and only act on their own.
func (t *connTable) each(f func(*Conn)) {
	for i := range t.chunks {
		ch := t.chunks[i].Load()
		if ch == nil {
			continue
		}
		for j := range ch {
			if c := ch[j].Load(); c != nil {
				f(c)
			}
		}
	}
}
