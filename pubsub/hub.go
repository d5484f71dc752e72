package pubsub

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/engine"
	"unicode/utf8"
)

// Policy is what happens to a subscriber whose queue is full.
type Policy uint8

// Slow-consumer policies.
const (
	// DropOldest drops the oldest queued message to make room, counts it and tells a
	// protocol client how many it missed.
	DropOldest Policy = iota
	// Close closes the subscriber (WebSocket close code 1008, policy violation).
	Close
)

// String returns the policy's configuration name.
func (p Policy) String() string {
	if p == Close {
		return "close"
	}
	return "drop_oldest"
}

// Defaults of Options.
const (
	DefaultQueue       = 1024
	DefaultSocketBytes = 64 << 10
	DefaultCopyMax     = 256
	DefaultMaxTopics   = 100000
	MaxTopicBytes      = 1024
)

// Options configures a Hub. The zero value is usable.
type Options struct {
	// Loops is the number of event loops subscribers may live on (the engine's loop
	// count); loop IDs must be below it. 0 means 64.
	Loops int
	// Queue is the most messages a subscriber may have waiting beyond its socket
	// queue; 0 means DefaultQueue.
	Queue int
	// SocketBytes is how much output may sit in a subscriber's socket queue before
	// messages wait in its own queue; 0 means DefaultSocketBytes.
	SocketBytes int
	// Policy applies when a subscriber's queue is full.
	Policy Policy
	// HistorySize keeps the last HistorySize messages of each topic for recovery; 0
	// keeps none.
	HistorySize int
	// HistoryTTL drops kept messages older than this; 0 keeps them until HistorySize
	// pushes them out.
	HistoryTTL time.Duration
	// CopyMax: frames of at most this many bytes are copied into a subscriber's
	// socket queue rather than queued by reference; copying a small frame costs less
	// than a reference segment and lets one iovec carry many frames. 0 means
	// DefaultCopyMax; negative queues every frame by reference.
	CopyMax int
	// MaxTopics bounds the topics the hub holds at once; a subscribe or publish that
	// would create one more is refused with ErrTopicLimit. 0 means DefaultMaxTopics.
	MaxTopics int
	// Bridge, when set, carries the hub's messages to other instances (cluster).
	Bridge Bridge
}

// Bridge connects a hub to other instances. The hub calls Subscribe when a topic gets
// its first local subscriber (and, when it keeps history, when the topic is created)
// and Unsubscribe when it loses its last (and when an expired topic leaves the hub,
// Hub.sweep), and Publish for every message published
// locally. Calls may come from any loop and must not block; messages from other
// instances come back through Hub.Deliver. A bridge must keep receiving a topic's
// messages while the hub keeps its history (Hub.KeepsHistory), subscribers or not: a
// client that comes back with a position recovers from that history, which must not
// lack what other instances published while nobody here listened.
type Bridge interface {
	Subscribe(topic string)
	Unsubscribe(topic string)
	Publish(topic string, m *Message)
}

// Stats are a hub's counters.
type Stats struct {
	Topics      int    // topics known now
	Subscribers int64  // subscriptions now, over every topic
	Published   uint64 // messages published
	Delivered   uint64 // frames queued to subscribers, recovered messages sent included
	Dropped     uint64 // messages dropped by the drop_oldest policy
	Closed      uint64 // subscribers closed by the close policy
	Queued      uint64 // messages that had to wait in a subscriber's queue
}

// Hub holds topics and their subscribers. It is safe for concurrent use.
type Hub struct {
	opts  Options
	mu    sync.Mutex        // guards topics
	topic map[string]*Topic // guarded by mu
	loops []loopHub         // index: engine loop ID
	// lastSweep is when sweep last ran (Unix nanoseconds); guarded by mu.
	lastSweep int64
	stop      chan struct{} // closed by Close: the sweeper ends
	closeOnce sync.Once

	published, delivered, dropped, closed, queued atomic.Uint64
}

// New returns a Hub with opts.
func New(opts Options) *Hub {
	if opts.Loops <= 0 {
		opts.Loops = 64
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.SocketBytes <= 0 {
		opts.SocketBytes = DefaultSocketBytes
	}
	if opts.CopyMax == 0 {
		opts.CopyMax = DefaultCopyMax
	}
	if opts.MaxTopics <= 0 {
		opts.MaxTopics = DefaultMaxTopics
	}
	h := &Hub{opts: opts, topic: map[string]*Topic{}, loops: make([]loopHub, opts.Loops), stop: make(chan struct{})}
	for i := range h.loops {
		h.loops[i].h = h
		h.loops[i].id = i
		h.loops[i].drainFn = h.loops[i].drain
		h.loops[i].postFn = h.loops[i].postDeferred
	}
	if h.expires() {
		go h.sweeper(sweepInterval(opts.HistoryTTL))
	}
	return h
}

// Close stops the hub's sweeper (see Hub.sweep). The hub stays usable; its idle
// topics are then only removed when a topic is refused for ErrTopicLimit.
func (h *Hub) Close() { h.closeOnce.Do(func() { close(h.stop) }) }

// Options returns the hub's options with defaults filled in.
func (h *Hub) Options() Options {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.opts
}

// SetMaxTopics changes Options.MaxTopics (0: DefaultMaxTopics) of a running hub, as a
// reload does: a lower limit removes no topic, it refuses new ones until the hub is
// below it.
func (h *Hub) SetMaxTopics(n int) {
	if n <= 0 {
		n = DefaultMaxTopics
	}
	h.mu.Lock()
	h.opts.MaxTopics = n
	h.mu.Unlock()
}

// SetBridge sets the cluster bridge; call it before any subscriber arrives.
func (h *Hub) SetBridge(b Bridge) { h.opts.Bridge = b }

// Stats returns a snapshot of the counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n := len(h.topic)
	var subs int64
	for _, t := range h.topic {
		subs += t.count.Load()
	}
	h.mu.Unlock()
	return Stats{Topics: n, Subscribers: subs, Published: h.published.Load(), Delivered: h.delivered.Load(),
		Dropped: h.dropped.Load(), Closed: h.closed.Load(), Queued: h.queued.Load()}
}

// Presence is one topic's subscriber count.
type Presence struct {
	Topic       string `json:"topic"`
	Subscribers int64  `json:"subscribers"`
	Offset      uint64 `json:"offset"` // the offset the next message will get
	Epoch       string `json:"epoch"`
}

// Presence returns the count of subscribers of every topic, sorted by name.
func (h *Hub) Presence() []Presence {
	h.mu.Lock()
	out := make([]Presence, 0, len(h.topic))
	for _, t := range h.topic {
		t.mu.Lock()
		out = append(out, Presence{Topic: t.name, Subscribers: t.count.Load(), Offset: t.next, Epoch: t.epoch})
		t.mu.Unlock()
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}

// Count returns the number of subscribers of topic name (0 when it does not exist).
func (h *Hub) Count(name string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.topic[name]; t != nil {
		return t.count.Load()
	}
	return 0
}

// Errors of topic names.
var (
	ErrTopicName = errors.New("pubsub: topic name is empty, too long, not UTF-8 or holds control characters")
	// ErrTopicLimit refuses a topic the hub would have to create while it holds
	// Options.MaxTopics topics.
	ErrTopicLimit = errors.New("pubsub: the hub holds its limit of topics (max_hub_topics)")
)

// ValidTopic reports whether name can be a topic: 1 to MaxTopicBytes bytes of UTF-8
// without control characters. UTF-8 is required because protocol clients name topics in
// JSON strings, which cannot carry other bytes: a topic published to over HTTP as
// %E9 could be neither subscribed to nor reported (presence showed it as U+FFFD).
func ValidTopic(name string) bool {
	if name == "" || len(name) > MaxTopicBytes || !utf8.ValidString(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// Topic is one named stream of messages.
type Topic struct {
	name string
	h    *Hub
	subs []loopSubs // index: loop ID; element i owned by loop i

	mu    sync.Mutex // guards next, epoch, hist and the order of inbox appends
	next  uint64     // offset of the next message (the first is 1)
	epoch string     // names this run of offsets; changes when they restart
	hist  history
	// scratch builds frames; guarded by mu.
	scratch []byte

	refs int // guarded by h.mu: subscriptions and holders (Hub.Acquire)
	// idleSince is when the topic was last published to or last released by its
	// last holder (Unix nanoseconds): a topic without holders and without kept
	// messages leaves the hub HistoryTTL after it (Hub.sweep).
	idleSince atomic.Int64
	count     atomic.Int64
	kinds     [numEnc]atomic.Int32 // subscribers per encoding
	// perLoop counts subscribers per loop; the loop increments and decrements its own
	// element, publishers read it to skip loops without subscribers.
	perLoop []atomic.Int32
}

// loopSubs is one loop's subscribers of a topic; owned by that loop.
type loopSubs struct {
	list []*Sub
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// Count returns its number of subscribers.
func (t *Topic) Count() int64 { return t.count.Load() }

// Epoch returns the topic's epoch and the offset the next message will get.
func (t *Topic) Epoch() (string, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.epoch, t.next
}

func newEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Acquire returns topic name, creating it, and holds it until Release: a held topic
// stays in the hub (with its history) even without subscribers.
func (h *Hub) Acquire(name string) (*Topic, error) {
	if !ValidTopic(name) {
		return nil, ErrTopicName
	}
	h.mu.Lock()
	t, room := h.roomFor(name)
	created := t == nil
	if created {
		if !room {
			h.mu.Unlock()
			return nil, ErrTopicLimit
		}
		t = h.newTopic(name)
		h.topic[name] = t
	}
	t.refs++
	h.mu.Unlock()
	if created && h.opts.HistorySize > 0 && h.opts.Bridge != nil {
		h.opts.Bridge.Subscribe(name) // its history is kept from now on
	}
	return t, nil
}

// Admits reports whether Acquire(name) would find room for the topic now: it exists,
// or the hub holds fewer than MaxTopics. Handlers ask it before answering a request
// whose topic is acquired only later (an SSE stream's head, a WebSocket handshake),
// so that a full hub is refused with a status rather than with a cut stream.
func (h *Hub) Admits(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, room := h.roomFor(name)
	return t != nil || room
}

// roomFor returns topic name if it exists, else whether the hub has room for it. A
// full hub whose topics expire sweeps first, so that topics expired since the last
// sweep make room (at most once per sweepMin: refused clients cannot make the hub walk
// its topics at every attempt). The caller holds h.mu, which roomFor may release and
// take again.
func (h *Hub) roomFor(name string) (*Topic, bool) {
	t := h.topic[name]
	if t != nil || len(h.topic) < h.opts.MaxTopics {
		return t, t == nil
	}
	if now := time.Now(); h.expires() && now.UnixNano()-h.lastSweep >= int64(sweepMin) {
		h.mu.Unlock()
		h.sweep(now)
		h.mu.Lock()
		t = h.topic[name]
	}
	return t, t == nil && len(h.topic) < h.opts.MaxTopics
}

// topicNames returns the names of the hub's topics.
func (h *Hub) topicNames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.topic))
	for name := range h.topic {
		names = append(names, name)
	}
	return names
}

// KeepsHistory reports whether the hub keeps topic name's history: with a history
// size, a topic stays in the hub once created, subscribers or not, until it expires
// (Hub.sweep).
func (h *Hub) KeepsHistory(name string) bool {
	return h.opts.HistorySize > 0 && h.Lookup(name) != nil
}

// newTopic returns a new topic called name at offset 1 of a new epoch; the caller
// holds h.mu and adds it to h.topic.
func (h *Hub) newTopic(name string) *Topic {
	t := &Topic{name: name, h: h, subs: make([]loopSubs, len(h.loops)), perLoop: make([]atomic.Int32, len(h.loops)),
		next: 1, epoch: newEpoch()}
	t.hist.init(h.opts.HistorySize, h.opts.HistoryTTL)
	t.idleSince.Store(time.Now().UnixNano())
	return t
}

// Release drops a hold taken by Acquire. A topic without holders leaves the hub at
// once when the hub keeps no history, else once it expires (Hub.sweep).
func (h *Hub) Release(t *Topic) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t.refs--
	if t.refs > 0 {
		return
	}
	t.idleSince.Store(time.Now().UnixNano())
	if h.opts.HistorySize == 0 && h.topic[t.name] == t {
		delete(h.topic, t.name)
	}
}

// Bounds of the sweep interval (sweepInterval).
const (
	sweepMin = 100 * time.Millisecond
	sweepMax = 30 * time.Second
)

// expires reports whether the hub's idle topics expire: they keep history (a topic
// without it leaves at its last Release) that has a TTL. With history and no TTL a
// topic stays for the process's life, and MaxTopics bounds how many there are.
func (h *Hub) expires() bool { return h.opts.HistorySize > 0 && h.opts.HistoryTTL > 0 }

// sweepInterval returns how often the sweeper looks for expired topics: a quarter of
// the TTL within [sweepMin, sweepMax], so a topic leaves at most that late.
func sweepInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/4, sweepMin), sweepMax)
}

// sweeper runs sweep every d until Close.
func (h *Hub) sweeper(d time.Duration) {
	tk := time.NewTicker(d)
	defer tk.Stop()
	for {
		select {
		case <-h.stop:
			return
		case now := <-tk.C:
			h.sweep(now)
		}
	}
}

// sweep removes every topic that expired by now: no holder (subscriber, publish in
// progress), no kept message left once those older than the TTL are dropped, and
// neither a publication nor a holder for a TTL (Centrifugo's history_ttl: a stream
// expires that long after its last publication). The topic's epoch and offsets go
// with it, so a client that comes back with a position in it is told that recovery
// failed, with the new epoch of a topic made afresh. Its NATS subscription ends
// too. It returns the number removed.
func (h *Hub) sweep(now time.Time) int {
	var gone []string
	ttl := h.opts.HistoryTTL.Nanoseconds()
	h.mu.Lock()
	h.lastSweep = now.UnixNano()
	for name, t := range h.topic {
		if t.refs > 0 || now.UnixNano()-t.idleSince.Load() < ttl {
			continue
		}
		t.mu.Lock()
		t.hist.expire(now)
		empty := t.hist.n == 0
		t.mu.Unlock()
		if empty {
			delete(h.topic, name)
			gone = append(gone, name)
		}
	}
	h.mu.Unlock()
	if b := h.opts.Bridge; b != nil {
		for _, name := range gone {
			b.Unsubscribe(name) // the bridge finds it gone and unsubscribes
		}
	}
	return len(gone)
}

// Lookup returns topic name if it exists, without holding it.
func (h *Hub) Lookup(name string) *Topic {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.topic[name]
}

// loopHub is a hub's state for one loop: the inbox other goroutines append to, and
// the loop's own bookkeeping.
type loopHub struct {
	h       *Hub
	id      int
	loop    atomic.Pointer[engine.Loop] // set when the loop's first subscriber arrives
	drainFn func()

	mu     sync.Mutex // guards inbox and posted
	inbox  []delivery
	posted bool // a drain task is posted and has not taken the inbox yet
	// drains counts the inboxes taken (atomic; written by the loop, read by tests of
	// the wake-up policy).
	drains atomic.Uint64

	// Owned by the loop:
	spare      []delivery
	toPost     []*loopHub // loops this loop's publishes left a post to (enqueueFrom)
	postFn     func()     // postDeferred, bound once
	delivering bool       // walking a subscriber list: removals are deferred
	removed    []*Sub     // removals deferred while delivering
	// sinks holds the output of each client that has no engine connection to write
	// to (see client.sink): SSE on an HTTP/2 stream or under TLS, WebSocket under TLS.
	sinks map[*client]sink
	// scratch builds frames a message did not get at publish (recovered SSE events).
	scratch []byte
	// expiries are the loop's clients whose grants expire, soonest first; expTimer
	// fires at expAt (Unix nanoseconds, 0 when not armed) to end them (expiry.go).
	expiries expiries
	expTimer *engine.Timer
	expAt    int64
}

// delivery is one message for one topic's subscribers on a loop.
type delivery struct {
	t *Topic
	m *Message
}

// fmtLoop reports a loop ID outside the hub's range.
func (h *Hub) loopOf(l *engine.Loop) *loopHub {
	id := l.ID()
	if id >= len(h.loops) {
		panic(fmt.Sprintf("pubsub: loop %d outside the hub's %d loops", id, len(h.loops)))
	}
	lh := &h.loops[id]
	if lh.loop.Load() == nil {
		lh.loop.Store(l)
	}
	return lh
}

// enqueue appends d to the loop's inbox and posts a drain task if none is pending.
// It runs under d.t.mu, so the inbox holds each topic's messages in offset order.
func (lh *loopHub) enqueue(d delivery) {
	if l, post := lh.push(d); post {
		l.Post(lh.drainFn)
	}
}

// push appends d to the inbox and returns the loop with whether the caller must post
// the drain task (none is pending). Without a loop yet (no subscriber has arrived on
// it) it drops d.
func (lh *loopHub) push(d delivery) (*engine.Loop, bool) {
	l := lh.loop.Load()
	if l == nil {
		d.m.Release()
		return nil, false
	}
	lh.mu.Lock()
	lh.inbox = append(lh.inbox, d)
	post := !lh.posted
	lh.posted = true
	lh.mu.Unlock()
	return l, post
}

// enqueueFrom is enqueue called on loop l, whose hub state is src: the post, when one
// is needed, waits for the end of l's iteration (postDeferred), so every message
// published in the iteration is in the inbox when the loop drains it. It runs under
// d.t.mu. A publisher on another goroutine that appends meanwhile sees the post as
// pending and relies on it; it is late by at most the rest of l's iteration.
func (lh *loopHub) enqueueFrom(d delivery, src *loopHub, l *engine.Loop) {
	if _, post := lh.push(d); post {
		if len(src.toPost) == 0 {
			l.Defer(src.postFn)
		}
		src.toPost = append(src.toPost, lh)
	}
}

// postDeferred runs at the end of the loop's iteration: it posts the drain task of
// every loop that enqueueFrom left one to.
func (lh *loopHub) postDeferred() {
	for i, to := range lh.toPost {
		lh.toPost[i] = nil
		to.loop.Load().Post(to.drainFn)
	}
	lh.toPost = lh.toPost[:0]
}

// append adds d to the inbox of the calling loop without posting: the caller
// drains it once the topic's lock is released. It reports false (and drops d) when
// the loop has no subscribers yet.
func (lh *loopHub) append(d delivery) bool {
	if lh.loop.Load() == nil {
		d.m.Release()
		return false
	}
	lh.mu.Lock()
	lh.inbox = append(lh.inbox, d)
	lh.mu.Unlock()
	return true
}

// drain runs on the loop: it delivers every message in the inbox.
func (lh *loopHub) drain() {
	if lh.delivering {
		return // reentered from a delivery: the running drain's caller comes back here
	}
	lh.mu.Lock()
	batch := lh.inbox
	lh.inbox = lh.spare[:0]
	lh.posted = false
	lh.mu.Unlock()
	lh.drains.Add(1)
	for i := range batch {
		d := batch[i]
		batch[i] = delivery{}
		lh.deliver(d.t, d.m)
	}
	lh.spare = batch[:0]
}

// deliver queues m to every subscriber of t on this loop and drops the delivery's
// reference to m.
func (lh *loopHub) deliver(t *Topic, m *Message) {
	lm := newLoopMsg(m) // takes over the delivery's reference
	ls := &t.subs[lh.id]
	lh.delivering = true
	n := 0
	for _, s := range ls.list {
		if s.dead || s == m.from || m.Offset < s.from {
			continue
		}
		if s.c.queue(lm, m.frames[s.c.enc]) {
			n++
		}
	}
	lh.delivering = false
	lm.release()
	lh.h.delivered.Add(uint64(n))
	if len(lh.removed) > 0 {
		for i, s := range lh.removed {
			lh.remove(s)
			lh.removed[i] = nil
		}
		lh.removed = lh.removed[:0]
	}
}

// loopMsg counts one loop's references to a Message without atomics: the engine
// holds one per queued frame and gives it back through rel.
type loopMsg struct {
	m   *Message
	n   int
	rel func()
}

func newLoopMsg(m *Message) *loopMsg {
	lm := &loopMsg{m: m, n: 1}
	lm.rel = lm.release
	return lm
}

func (lm *loopMsg) retain() { lm.n++ }

func (lm *loopMsg) release() {
	lm.n--
	if lm.n == 0 {
		lm.m.Release()
		lm.m = nil
	}
}
