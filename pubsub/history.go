package pubsub

import (
	"errors"
	"time"
)

// ErrRecovery is reported when missed messages cannot be replayed: the epoch
// changed, or the ring no longer holds the first missed offset.
var ErrRecovery = errors.New("pubsub: recovery failed: missed messages are no longer kept")

// history is a topic's ring of its last messages; guarded by the topic's mu. Each
// kept message holds a reference.
type history struct {
	size int
	ttl  time.Duration
	// ring grows with the messages kept, from minRing slots doubling up to size, and
	// is dropped when it empties: a topic holding one message costs a few slots, not
	// size (8 bytes a slot: with size 100,000, 800 KB for every topic ever published
	// to once).
	ring []*Message
	head int // index of the oldest message
	n    int // messages kept
}

// minRing is the smallest ring a history allocates.
const minRing = 8

func (hs *history) init(size int, ttl time.Duration) { hs.size, hs.ttl = size, ttl }

// push keeps m and returns the message it pushed out, if any.
func (hs *history) push(m *Message) *Message {
	if hs.n == len(hs.ring) && len(hs.ring) < hs.size {
		hs.grow()
	}
	if hs.n < len(hs.ring) {
		hs.ring[(hs.head+hs.n)%len(hs.ring)] = m
		hs.n++
		return nil
	}
	old := hs.ring[hs.head]
	hs.ring[hs.head] = m
	hs.head = (hs.head + 1) % len(hs.ring)
	return old
}

// grow doubles the ring (to at least minRing, at most size slots), oldest first.
func (hs *history) grow() {
	r := make([]*Message, min(max(2*len(hs.ring), minRing), hs.size))
	for i := 0; i < hs.n; i++ {
		r[i] = hs.ring[(hs.head+i)%len(hs.ring)]
	}
	hs.ring, hs.head = r, 0
}

// at returns the i-th kept message, oldest first.
func (hs *history) at(i int) *Message { return hs.ring[(hs.head+i)%len(hs.ring)] }

// pop drops the oldest kept message; an emptied ring is let go.
func (hs *history) pop() {
	hs.ring[hs.head].Release()
	hs.ring[hs.head] = nil
	hs.head = (hs.head + 1) % len(hs.ring)
	hs.n--
	if hs.n == 0 {
		hs.ring, hs.head = nil, 0
	}
}

// expire drops messages older than the TTL.
func (hs *history) expire(now time.Time) {
	if hs.ttl <= 0 {
		return
	}
	limit := now.Add(-hs.ttl).UnixNano()
	for hs.n > 0 && hs.ring[hs.head].Time < limit {
		hs.pop()
	}
}

// clear drops every kept message.
func (hs *history) clear() {
	for hs.n > 0 {
		hs.pop()
	}
}

// since appends to out the kept messages after offset (every message with a larger
// offset) when the ring still holds offset+1; next is the topic's next offset.
func (hs *history) since(out []*Message, offset, next uint64) ([]*Message, bool) {
	if offset+1 >= next {
		return out, offset < next // nothing missed (offset from the future: failed)
	}
	if hs.n == 0 || hs.ring[hs.head].Offset > offset+1 {
		return out, false
	}
	for i := 0; i < hs.n; i++ {
		if m := hs.at(i); m.Offset > offset {
			out = append(out, m)
		}
	}
	return out, true
}

// Recover returns the messages published after offset in epoch, each retained
// (the caller releases them), and the topic's current epoch and next offset. It
// fails with ErrRecovery when they cannot all be given. The caller uses it to
// replay, then subscribes from the returned next offset (Subscribe's from).
func (t *Topic) Recover(epoch string, offset uint64, now time.Time) ([]*Message, string, uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hist.expire(now)
	if epoch != t.epoch {
		return nil, t.epoch, t.next, ErrRecovery
	}
	ms, ok := t.hist.since(nil, offset, t.next)
	if !ok {
		return nil, t.epoch, t.next, ErrRecovery
	}
	for _, m := range ms {
		m.Retain()
	}
	return ms, t.epoch, t.next, nil
}

// Gap records that messages may have been missed (a cluster link was down): the
// history is dropped and the epoch renewed, so recovery across the gap fails
// rather than silently skipping messages. Offsets continue.
func (t *Topic) Gap() {
	t.mu.Lock()
	t.hist.clear()
	t.epoch = newEpoch()
	t.mu.Unlock()
}

// Gap calls Topic.Gap on every topic of the hub.
func (h *Hub) Gap() {
	h.mu.Lock()
	ts := make([]*Topic, 0, len(h.topic))
	for _, t := range h.topic {
		ts = append(ts, t)
	}
	h.mu.Unlock()
	for _, t := range ts {
		t.Gap()
	}
}
