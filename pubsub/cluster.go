package pubsub

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/websocket"
	"github.com/nats-io/nats.go"
)

// NATSBridge carries a hub's topics through a NATS server, so that a message
// published on any gale instance reaches the subscribers of every instance once.
//
// Each instance holds one NATS subscription per topic that has local subscribers
// or whose history it keeps (subject Subject + "." + the topic's hex encoding) and
// publishes every local message there. The connection is made with NoEcho, so the
// server never sends an instance its own messages back: local subscribers get them
// from the hub directly, remote ones through their instance's subscription, each
// exactly once. NATS keeps the order of one connection's messages on a subject, so a
// publisher's order holds on every instance.
//
// When the NATS server is unreachable local delivery goes on; the client reconnects
// with a growing delay (up to 5 s) and resubscribes. Messages other instances
// published meanwhile are lost to this one, so on reconnect the gap is logged and
// reported to history recovery (Hub.Gap): positions from before it fail to recover
// instead of silently skipping messages. The same holds for an instance that started
// while NATS was down: its first connection is reported as a gap too, and for a hub
// that restored a snapshot (Hub.LoadSnapshot) before its bridge was made: its
// histories lack what other instances published while it was away.
type NATSBridge struct {
	h       *Hub
	nc      *nats.Conn
	subject string
	log     *slog.Logger

	mu   sync.Mutex // guards subs
	subs map[string]*nats.Subscription

	out       chan outMsg   // the outbox
	done      chan struct{} // closed by Close
	closeOnce sync.Once

	gaps, sent, received, sendErrors atomic.Uint64
	// lateConnect is set when the first connection attempt failed, so the connection
	// that eventually comes (nats.go calls ConnectHandler for it, not ReconnectHandler)
	// ends a gap. Written once after nats.Connect returns, read by NATS's callback
	// goroutine, which runs it a reconnect delay (at least 100 ms) later.
	lateConnect atomic.Bool
}

var _ Bridge = (*NATSBridge)(nil)

// BridgeStats are a bridge's counters.
type BridgeStats struct {
	Connected  bool
	Gaps       uint64 // reconnections after which messages may have been missed
	Sent       uint64 // messages published to NATS
	Received   uint64 // messages from other instances delivered here
	SendErrors uint64 // messages NATS refused (connection closed, buffer full)
}

// NewNATSBridge connects to the NATS server at url and makes the bridge of h; it
// sets itself as h's Bridge. It does not wait for the server: if it is down, the
// client keeps trying in the background.
func NewNATSBridge(h *Hub, url, subject string, log *slog.Logger) (*NATSBridge, error) {
	if log == nil {
		log = slog.Default()
	}
	b := &NATSBridge{h: h, subject: subject, log: log, subs: map[string]*nats.Subscription{}, out: make(chan outMsg, outboxSize), done: make(chan struct{})}
	nc, err := nats.Connect(url,
		nats.Name("gale pubsub"),
		nats.NoEcho(),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return min(time.Duration(attempts)*100*time.Millisecond, 5*time.Second)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("pubsub: NATS connection lost; local delivery continues", "url", url, "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			b.gap(c, "reconnected")
		}),
		nats.ConnectHandler(func(c *nats.Conn) {
			if b.lateConnect.Load() {
				b.gap(c, "connected after starting without it")
				return
			}
			log.Info("pubsub: NATS connected", "url", c.ConnectedUrl())
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("pubsub: NATS %s: %w", url, err)
	}
	if !nc.IsConnected() {
		b.lateConnect.Store(true)
		log.Warn("pubsub: NATS unreachable at start; local delivery only until it connects", "url", url)
	}
	b.nc = nc
	go b.send()
	h.SetBridge(b)
	if names := h.topicNames(); len(names) > 0 {
		// Topics older than the bridge were restored from a snapshot: other
		// instances published while this process was away, and their histories
		// lack it, so the restart is a gap like a reconnection (a late first
		// connection reports it itself). Their NATS subscriptions start now.
		if !b.lateConnect.Load() {
			b.gap(nc, "connected with topics restored from a snapshot")
		}
		for _, name := range names {
			b.sync(name)
		}
	}
	return b, nil
}

// gap counts and logs a connection after which messages of other instances may have
// been missed and tells the hub (Hub.Gap). The hub learns of the gap before the
// counter moves, so whoever sees Gaps grow also sees the new epoch. nats.go runs this
// on its callback goroutine, after IsConnected already reports true.
func (b *NATSBridge) gap(c *nats.Conn, how string) {
	b.h.Gap()
	b.log.Warn("pubsub: NATS "+how+"; messages of other instances may have been missed, history positions before now will not recover", "url", c.ConnectedUrl())
	b.gaps.Add(1)
}

// Stats returns a snapshot of the counters.
func (b *NATSBridge) Stats() BridgeStats {
	return BridgeStats{Connected: b.nc.IsConnected(), Gaps: b.gaps.Load(), Sent: b.sent.Load(),
		Received: b.received.Load(), SendErrors: b.sendErrors.Load()}
}

// Close stops the sending goroutine and closes the NATS connection; messages the
// hub publishes afterwards stay local.
func (b *NATSBridge) Close() {
	b.closeOnce.Do(func() {
		close(b.done)
		b.nc.Close()
	})
}

func (b *NATSBridge) subjectOf(topic string) string {
	return b.subject + "." + hex.EncodeToString([]byte(topic))
}

// Subscribe implements Bridge.
func (b *NATSBridge) Subscribe(topic string) { b.sync(topic) }

// Unsubscribe implements Bridge.
func (b *NATSBridge) Unsubscribe(topic string) { b.sync(topic) }

// sync makes the NATS subscription of topic match what the hub needs: held while
// the topic has local subscribers or the hub keeps its history. Without the second,
// the last subscriber's leaving ended the subscription while the history and epoch
// stayed, so a client coming back with its position recovered "ok" without the
// messages other instances published meanwhile. Counts change on several loops and
// their calls may arrive in any order, so the call reads the count rather than
// trusting which method was called: the last call to run sees the final count.
func (b *NATSBridge) sync(topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := b.h.Count(topic) > 0 || b.h.KeepsHistory(topic)
	s := b.subs[topic]
	switch {
	case want && s == nil:
		s, err := b.nc.Subscribe(b.subjectOf(topic), func(m *nats.Msg) {
			if len(m.Data) == 0 {
				return
			}
			b.received.Add(1)
			_ = b.h.Deliver(topic, websocket.Opcode(m.Data[0]), m.Data[1:], "nats")
		})
		if err != nil {
			b.log.Error("pubsub: NATS subscribe failed", "topic", topic, "err", err)
			return
		}
		// Remote messages may be frequent: let the client buffer many before it drops.
		_ = s.SetPendingLimits(1<<20, 256<<20)
		b.subs[topic] = s
	case !want && s != nil:
		_ = s.Unsubscribe()
		delete(b.subs, topic)
	}
}

// outboxSize bounds the messages waiting for the NATS client: Publish never
// blocks a loop; beyond this they are dropped and counted (SendErrors).
const outboxSize = 64 << 10

// Publish implements Bridge: the message waits in the bridge's outbox for the
// sending goroutine (the NATS client may block while it reconnects). The opcode
// travels as the first byte.
func (b *NATSBridge) Publish(topic string, m *Message) {
	select {
	case <-b.done:
		return
	default:
	}
	m.Retain()
	select {
	case b.out <- outMsg{topic, m}:
	default:
		m.Release()
		if b.sendErrors.Add(1) == 1 {
			b.log.Warn("pubsub: NATS outbox full; messages for other instances are dropped", "topic", topic)
		}
	}
}

type outMsg struct {
	topic string
	m     *Message
}

// send runs on the bridge's goroutine until Close.
func (b *NATSBridge) send() {
	var buf []byte
	for {
		var o outMsg
		select {
		case <-b.done:
			return
		case o = <-b.out:
		}
		buf = append(buf[:0], byte(o.m.Op))
		buf = append(buf, o.m.Data...)
		o.m.Release()
		if err := b.nc.Publish(b.subjectOf(o.topic), buf); err != nil {
			if b.sendErrors.Add(1) == 1 || !errors.Is(err, nats.ErrReconnectBufExceeded) {
				b.log.Warn("pubsub: NATS publish failed", "topic", o.topic, "err", err)
			}
			continue
		}
		b.sent.Add(1)
	}
}
