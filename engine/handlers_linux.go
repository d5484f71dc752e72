//go:build linux && !galenet

package engine

import "math"

// handlerTable numbers the handlers of one loop's connections, so that a Conn holds
// a 16-bit index instead of a 16-byte interface. Slots are reference-counted: a
// listener holds its handler's slot for good, each connection holds its current
// handler's slot until it closes or is re-parented, and a slot whose count falls to
// zero is reused. Shared protocol handlers cost one slot however many connections
// use them; per-connection handler values (an upgraded connection's own) cost a
// slot while in use. Owned by the loop.
type handlerTable struct {
	list  []Handler
	refs  []int32
	free  []uint16
	index map[Handler]uint16
}

// acquire returns h's slot with one more reference, adding h if it has none.
func (t *handlerTable) acquire(h Handler) uint16 {
	if i, ok := t.index[h]; ok {
		t.refs[i]++
		return i
	}
	var i uint16
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		t.list[i], t.refs[i] = h, 1
	} else {
		if len(t.list) > math.MaxUint16 {
			panic("engine: more than 65536 distinct handlers in use on one loop; share handler values and keep per-connection state in the connection's context")
		}
		i = uint16(len(t.list))
		t.list = append(t.list, h)
		t.refs = append(t.refs, 1)
	}
	if t.index == nil {
		t.index = make(map[Handler]uint16)
	}
	t.index[h] = i
	return i
}

// retain adds a reference to slot i, which must be in use.
func (t *handlerTable) retain(i uint16) { t.refs[i]++ }

// release drops a reference to slot i and frees the slot at zero.
func (t *handlerTable) release(i uint16) {
	if t.refs[i]--; t.refs[i] == 0 {
		delete(t.index, t.list[i])
		t.list[i] = nil
		t.free = append(t.free, i)
	}
}
