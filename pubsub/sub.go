package pubsub

import (
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/wsserver"
)

// Sub is one subscription: a client on one topic. It is owned by the client's loop.
type Sub struct {
	t    *Topic
	c    *client
	idx  int    // position in t.subs[loop].list
	from uint64 // the first offset it receives live (earlier ones came by recovery or not at all)
	dead bool   // unsubscribed while its loop was delivering; leaves the list afterwards
}

// Topic returns the subscription's topic.
func (s *Sub) Topic() *Topic { return s.t }

// Position names a point in a topic's stream: the last offset a client received
// in an epoch.
type Position struct {
	Epoch  string
	Offset uint64
}

// Joined is what subscribing reports.
type Joined struct {
	Epoch     string     // the topic's epoch
	Next      uint64     // the offset of the next live message
	Replay    []*Message // missed messages to send first, each retained; nil without recovery
	Recovered bool       // a recovery was asked and Replay holds every missed message
	Failed    bool       // a recovery was asked and failed (ErrRecovery)
}

// subscribe adds c to t on c's loop. With rec it also collects the messages after
// rec (see Topic.Recover), atomically with joining, so that nothing published
// meanwhile is missed or delivered twice.
func (lh *loopHub) subscribe(t *Topic, c *client, rec *Position) (*Sub, Joined) {
	s := &Sub{t: t, c: c}
	var j Joined
	t.mu.Lock()
	if rec != nil {
		t.hist.expire(time.Now())
		if rec.Epoch == t.epoch {
			j.Replay, j.Recovered = t.hist.since(nil, rec.Offset, t.next)
		}
		j.Failed = !j.Recovered
		for _, m := range j.Replay {
			m.Retain()
		}
	}
	j.Epoch, j.Next = t.epoch, t.next
	s.from = t.next
	ls := &t.subs[lh.id]
	s.idx = len(ls.list)
	ls.list = append(ls.list, s)
	first := t.count.Add(1) == 1
	t.perLoop[lh.id].Add(1)
	t.kinds[c.enc].Add(1)
	t.mu.Unlock()
	if first && lh.h.opts.Bridge != nil {
		lh.h.opts.Bridge.Subscribe(t.name)
	}
	return s, j
}

// unsubscribe removes s (on its loop); during a delivery on the loop the removal
// waits until the walk ends.
func (lh *loopHub) unsubscribe(s *Sub) {
	if s.dead {
		return
	}
	s.dead = true
	if lh.delivering {
		lh.removed = append(lh.removed, s)
		return
	}
	lh.remove(s)
}

func (lh *loopHub) remove(s *Sub) {
	t := s.t
	ls := &t.subs[lh.id]
	last := len(ls.list) - 1
	if s.idx > last || ls.list[s.idx] != s {
		return
	}
	ls.list[s.idx] = ls.list[last]
	ls.list[s.idx].idx = s.idx
	ls.list[last] = nil
	ls.list = ls.list[:last]
	if cap(ls.list) > 64 && len(ls.list) < cap(ls.list)/4 {
		ls.list = append([]*Sub(nil), ls.list...)
	}
	t.perLoop[lh.id].Add(-1)
	t.kinds[s.c.enc].Add(-1)
	if t.count.Add(-1) == 0 && lh.h.opts.Bridge != nil {
		lh.h.opts.Bridge.Unsubscribe(t.name)
	}
	lh.h.Release(t)
}

// client is one subscribing connection (WebSocket or SSE); owned by its loop.
type client struct {
	lh      *loopHub
	ec      *engine.Conn
	enc     Encoding
	closing bool     // closed by the slow-consumer policy or going away: nothing more is queued
	wait    *backlog // messages beyond the socket queue; nil when none wait
	dropped uint64   // messages dropped since the client was last told
	// closeSlow ends the connection for the Close policy (WebSocket 1008).
	closeSlow func()
	// tellDropped tells a protocol client how many messages it missed; nil when the
	// encoding cannot say it.
	tellDropped func(n uint64)
	// expiry is when the client's grant ends (a JWT's exp) and how its connection
	// ends then; nil when the grant does not expire.
	expiry *expiry
}

// backlog is a ring of messages waiting for a subscriber's socket queue to drain,
// and the missed messages of recoveries still to be sent ahead of them.
type backlog struct {
	ring []pending
	head int
	n    int
	// replay holds missed messages of a recovery (each retained, oldest first) that
	// send has not sent yet. They go out as the socket queue drains, ahead of the
	// ring, whose live messages are all newer: a recovery of any length is paced by
	// the client's reading, like live messages, instead of queued at once.
	replay []*Message
	send   func(*Message)
}

// newBacklog returns an empty backlog for a hub with options o.
func newBacklog(o *Options) *backlog {
	return &backlog{ring: make([]pending, min(16, o.Queue))}
}

type pending struct {
	lm    *loopMsg
	frame []byte
}

// queue queues frame (m's frame in c's encoding, referenced through lm) to c under
// the slow-consumer policy, and reports whether it was queued.
func (c *client) queue(lm *loopMsg, frame []byte) bool {
	if c.closing || frame == nil || c.closed() || c.expiry != nil && c.expired(c.lh.loop.Load().Now()) {
		return false
	}
	h := c.lh.h
	if c.wait == nil && c.buffered() < h.opts.SocketBytes {
		switch {
		case c.ec == nil:
			c.sink().write(frame) // copied
		case len(frame) <= h.opts.CopyMax:
			_ = c.ec.Write(frame)
		default:
			lm.retain()
			_ = c.ec.WriteRef(frame, lm.rel)
		}
		return true
	}
	w := c.wait
	if w == nil {
		w = newBacklog(&h.opts)
		c.wait = w
		c.wantDrain()
	}
	if w.n == h.opts.Queue {
		if h.opts.Policy == Close {
			h.closed.Add(1)
			c.closing = true
			c.clearWait()
			c.closeSlow()
			return false
		}
		p := w.ring[w.head]
		w.ring[w.head] = pending{}
		w.head = (w.head + 1) % len(w.ring)
		w.n--
		p.lm.release()
		c.dropped++
		h.dropped.Add(1)
	}
	if w.n == len(w.ring) {
		grown := make([]pending, min(2*len(w.ring), h.opts.Queue))
		for i := 0; i < w.n; i++ {
			grown[i] = w.ring[(w.head+i)%len(w.ring)]
		}
		w.ring, w.head = grown, 0
	}
	w.ring[(w.head+w.n)%len(w.ring)] = pending{lm, frame}
	w.n++
	lm.retain()
	h.queued.Add(1)
	return true
}

// replayMissed sends the missed messages of a recovery, each retained, with send,
// which builds the client's frame (a message's frame in the client's encoding may not
// have been built when it was published). What the socket queue has no room for
// waits in the backlog, ahead of live messages, which wait behind it meanwhile; the
// references are released as the messages go.
func (c *client) replayMissed(ms []*Message, send func(*Message)) {
	if len(ms) == 0 {
		return
	}
	if c.closing {
		for _, m := range ms {
			m.Release()
		}
		return
	}
	if c.wait == nil {
		c.wait = newBacklog(&c.lh.h.opts)
	}
	c.wait.replay = append(c.wait.replay, ms...)
	c.wait.send = send
	c.drained()
}

// drained moves waiting messages to the socket queue once it has room (OnDrain):
// missed messages of a recovery first, then live ones.
func (c *client) drained() {
	w := c.wait
	if w == nil || c.closing {
		return
	}
	h := c.lh.h
	// At least one message moves per call: OnDrain fires at the engine's low-water
	// mark, which may lie above SocketBytes.
	moved := false
	replayed := 0
	for len(w.replay) > 0 && (!moved || c.buffered() < h.opts.SocketBytes) && !c.closing {
		m := w.replay[0]
		w.replay[0] = nil
		w.replay = w.replay[1:]
		w.send(m)
		m.Release()
		moved = true
		replayed++
	}
	if replayed > 0 { // a recovered message sent is a delivery like a live one (deliver counts those)
		h.delivered.Add(uint64(replayed))
	}
	if len(w.replay) > 0 {
		if !c.closing {
			c.wantDrain()
		}
		return
	}
	w.replay, w.send = nil, nil
	for ; w.n > 0 && (!moved || c.buffered() < h.opts.SocketBytes); moved = true {
		p := w.ring[w.head]
		w.ring[w.head] = pending{}
		w.head = (w.head + 1) % len(w.ring)
		w.n--
		if c.ec == nil {
			c.sink().write(p.frame) // copied: the backlog's reference ends here
			p.lm.release()
			continue
		}
		_ = c.ec.WriteRef(p.frame, p.lm.rel) // the backlog's reference passes to the engine
	}
	if w.n > 0 {
		c.wantDrain()
		return
	}
	c.wait = nil
	if c.dropped > 0 && c.tellDropped != nil {
		n := c.dropped
		c.dropped = 0
		c.tellDropped(n)
	}
}

// A client writes its frames on its engine connection (ec) when it may: a plain
// WebSocket, an SSE response over plain HTTP/1.1. Otherwise ec is nil and its output
// is a sink in its loop's sinks map (so that the others pay nothing for it): an
// HTTP/2 stream or a response under TLS (SSE), or a WebSocket under TLS, whose frames
// must go through the TLS layer (written on the engine connection they would leave
// unencrypted, inside the TLS stream). The methods below send to whichever it has.

// sink is the output of a client without an engine connection to write to. Writes
// copy. Every method runs on the client's loop.
type sink interface {
	write(p []byte)
	buffered() int
	closed() bool
	wantDrain(c *client) // c.drained once the queued output has gone
}

// exchangeSink is an SSE response on an HTTP/2 stream or under TLS.
type exchangeSink struct{ x server.Exchange }

func (s exchangeSink) write(p []byte)      { _, _ = s.x.Write(p) }
func (s exchangeSink) buffered() int       { return s.x.Buffered() }
func (s exchangeSink) closed() bool        { return s.x.Closed() || s.x.Ended() }
func (s exchangeSink) wantDrain(c *client) { s.x.OnDrain(c.drained) }

// wsSink is a WebSocket under TLS; its drain comes through wsApp.OnDrain.
type wsSink struct{ c *wsserver.Conn }

func (s wsSink) write(p []byte)    { _ = s.c.WriteFrame(p) }
func (s wsSink) buffered() int     { return s.c.Buffered() }
func (s wsSink) closed() bool      { return !s.c.Open() }
func (s wsSink) wantDrain(*client) { s.c.WantDrain() }

// sink returns the output of a client without an engine connection, nil once it
// has been dropped.
func (c *client) sink() sink { return c.lh.sinks[c] }

// setSink makes s the client's output (ec stays nil).
func (c *client) setSink(s sink) {
	if c.lh.sinks == nil {
		c.lh.sinks = make(map[*client]sink)
	}
	c.lh.sinks[c] = s
}

// dropSink forgets the sink of a client that has ended.
func (c *client) dropSink() {
	if c.ec == nil {
		delete(c.lh.sinks, c)
	}
}

// closed reports whether the client's connection or stream has gone.
func (c *client) closed() bool {
	if c.ec == nil {
		s := c.sink()
		return s == nil || s.closed()
	}
	return c.ec.Closed()
}

// buffered reports the output queued for the client.
func (c *client) buffered() int {
	if c.ec == nil {
		return c.sink().buffered()
	}
	return c.ec.Buffered()
}

// wantDrain asks for one drained call once the client's queued output has gone.
func (c *client) wantDrain() {
	if c.ec == nil {
		c.sink().wantDrain(c)
		return
	}
	c.ec.WantDrain()
}

// forget drops the waiting messages of topic t (missed and live ones), for a client
// that has unsubscribed from it: nothing of t may follow the "unsubscribed" reply.
func (c *client) forget(t *Topic) {
	w := c.wait
	if w == nil {
		return
	}
	keep := w.replay[:0]
	for _, m := range w.replay {
		if m.Topic == t.name {
			m.Release()
			continue
		}
		keep = append(keep, m)
	}
	clear(w.replay[len(keep):])
	w.replay = keep
	n := 0
	for i := 0; i < w.n; i++ {
		p := w.ring[(w.head+i)%len(w.ring)]
		if p.lm.m.Topic == t.name {
			p.lm.release()
			continue
		}
		w.ring[(w.head+n)%len(w.ring)] = p
		n++
	}
	for i := n; i < w.n; i++ {
		w.ring[(w.head+i)%len(w.ring)] = pending{}
	}
	w.n = n
}

// clearWait drops every waiting message.
func (c *client) clearWait() {
	w := c.wait
	if w == nil {
		return
	}
	for i, m := range w.replay {
		m.Release()
		w.replay[i] = nil
	}
	w.replay, w.send = nil, nil
	for ; w.n > 0; w.n-- {
		w.ring[w.head].lm.release()
		w.ring[w.head] = pending{}
		w.head = (w.head + 1) % len(w.ring)
	}
	c.wait = nil
}
