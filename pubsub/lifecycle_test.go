package pubsub

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
	"github.com/gorilla/websocket"
)

// httpPublish posts body to topic over HTTP with token "tok" and returns the
// response's status and Retry-After field.
func httpPublish(t *testing.T, addr, prefix, topic, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+addr+prefix+"publish/"+topic, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestTopicExpiresAfterHistoryTTL: with history.size and history.ttl, a topic
// without subscribers leaves the hub once its kept messages expired and it had no
// publication for a TTL, and a client that comes back with a position in it is told
// that recovery failed, with the new epoch. A topic that still has a subscriber stays,
// however long it goes without messages. Before, topics with history stayed for the
// process's life: clients could create them without bound (epoll and io_uring).
func TestTopicExpiresAfterHistoryTTL(t *testing.T) {
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			const ttl = 300 * time.Millisecond
			hd, addr := startHubOn(t, eng, Options{HistorySize: 10, HistoryTTL: ttl},
				HandlerOptions{Mode: ProtocolMode, PublishToken: "tok"})
			h := hd.Hub()
			c := wsDial(t, "ws://"+addr+"/ws/", nil)
			send(t, c, `{"type":"subscribe","id":1,"topic":"kept"}`)
			send(t, c, `{"type":"subscribe","id":2,"topic":"gone"}`)
			for i := 0; i < 2; i++ {
				if r := readReply(t, c); r.Type != "subscribed" {
					t.Fatalf("subscribe: %+v", r)
				}
			}
			if st, _ := httpPublish(t, addr, "/ws/", "gone", `"m1"`); st != 200 {
				t.Fatalf("publish: %d", st)
			}
			pos := readReply(t, c)
			if pos.Type != "message" || pos.Topic != "gone" {
				t.Fatalf("delivery: %+v", pos)
			}
			// Topics published to by nobody's subscriber: created by the publish.
			for i := 0; i < 20; i++ {
				if st, _ := httpPublish(t, addr, "/ws/", fmt.Sprintf("loose.%d", i), `"x"`); st != 200 {
					t.Fatalf("publish: %d", st)
				}
			}
			send(t, c, `{"type":"unsubscribe","id":3,"topic":"gone"}`)
			if r := readReply(t, c); r.Type != "unsubscribed" {
				t.Fatalf("unsubscribe: %+v", r)
			}
			start := time.Now()
			testkit.WaitFor(t, "the idle topics to expire", func() bool { return h.Stats().Topics == 1 })
			if el := time.Since(start); el < ttl/2 {
				t.Fatalf("topics left after %v, before their TTL of %v", el, ttl)
			}
			if h.Lookup("kept") == nil {
				t.Fatal("the topic with a subscriber left the hub")
			}
			send(t, c, fmt.Sprintf(`{"type":"subscribe","id":4,"topic":"gone","epoch":%q,"offset":%d}`, pos.Epoch, pos.Offset))
			r := readReply(t, c)
			if r.Type != "subscribed" || r.Recovery != "failed" || r.Epoch == pos.Epoch || r.Epoch == "" || r.Offset != 0 {
				t.Fatalf("recovery in an expired topic: %+v, want failed with a new epoch at offset 0", r)
			}
			// The kept topic still delivers.
			if st, _ := httpPublish(t, addr, "/ws/", "kept", `"k"`); st != 200 {
				t.Fatalf("publish: %d", st)
			}
			if m := readReply(t, c); m.Type != "message" || m.Topic != "kept" || m.Offset != 1 {
				t.Fatalf("delivery on the kept topic: %+v", m)
			}
		})
	}
}

// TestHubTopicLimit: a hub holding Options.MaxTopics topics refuses to create one
// more, clearly and on every side: a protocol subscribe or publish gets hub_full,
// an HTTP publish and an SSE request 503 with Retry-After, a path-mode handshake
// 503; the topics it holds are served as before. With a history TTL the topics
// that expired make room (epoll and io_uring).
func TestHubTopicLimit(t *testing.T) {
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			hd, addr := startHubOn(t, eng, Options{HistorySize: 10, MaxTopics: 3},
				HandlerOptions{Mode: ProtocolMode, PublishToken: "tok"})
			for i := 0; i < 3; i++ {
				if st, _ := httpPublish(t, addr, "/ws/", fmt.Sprint("t", i), `1`); st != 200 {
					t.Fatalf("publish %d: %d", i, st)
				}
			}
			if st, ra := httpPublish(t, addr, "/ws/", "t3", `1`); st != 503 || ra != "1" {
				t.Fatalf("publish to a 4th topic: %d Retry-After %q, want 503 with 1", st, ra)
			}
			if st, _ := httpPublish(t, addr, "/ws/", "t0", `2`); st != 200 {
				t.Fatalf("publish to a held topic: %d", st)
			}
			c := wsDial(t, "ws://"+addr+"/ws/", nil)
			send(t, c, `{"type":"subscribe","id":1,"topic":"t3"}`)
			if r := readReply(t, c); r.Type != "error" || r.Code != ErrCodeHubFull || string(r.ID) != "1" {
				t.Fatalf("subscribe to a 4th topic: %+v, want %s", r, ErrCodeHubFull)
			}
			send(t, c, `{"type":"publish","id":2,"topic":"t4","data":1}`)
			if r := readReply(t, c); r.Type != "error" || r.Code != ErrCodeHubFull {
				t.Fatalf("publish to a 4th topic: %+v, want %s", r, ErrCodeHubFull)
			}
			send(t, c, `{"type":"subscribe","id":3,"topic":"t1"}`)
			if r := readReply(t, c); r.Type != "subscribed" || r.Offset != 1 {
				t.Fatalf("subscribe to a held topic: %+v", r)
			}
			_, resp := rawHTTP(t, addr, "GET /ws/sse/t5 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
				t.Fatalf("SSE on a 4th topic: %d %v", resp.StatusCode, resp.Header)
			}
			if n := hd.Hub().Stats().Topics; n != 3 {
				t.Fatalf("%d topics, want 3", n)
			}

			// Path mode on a full hub: the handshake is refused.
			ph, err := NewHandler(hd.Hub(), HandlerOptions{Prefix: "/p/", Mode: PathMode})
			if err != nil {
				t.Fatal(err)
			}
			psrv := servertest.Start(t, ph, func(so *server.Options) { so.Workers = 2; so.Engine = eng })
			_, presp, err := websocket.DefaultDialer.Dial("ws://"+psrv.Addr()+"/p/t6", nil)
			if err == nil || presp == nil || presp.StatusCode != 503 {
				t.Fatalf("path-mode handshake on a full hub: %v %v, want 503", err, presp)
			}
			pc := wsDial(t, "ws://"+psrv.Addr()+"/p/t2", nil)
			_ = pc
			waitCount(t, hd.Hub(), "t2", 1)
		})
	}
}

// TestHubTopicLimitMadeRoomByExpiry: a full hub whose topics expire (history.ttl)
// creates a new topic once an old one has expired, without waiting for the sweeper.
func TestHubTopicLimitMadeRoomByExpiry(t *testing.T) {
	h := New(Options{Loops: 1, HistorySize: 10, HistoryTTL: time.Hour, MaxTopics: 2})
	defer h.Close()
	for _, name := range []string{"a", "b"} {
		tp, err := h.Acquire(name)
		if err != nil {
			t.Fatal(err)
		}
		tp.Publish(websocket.TextMessage, []byte("1"), nil)
		h.Release(tp)
	}
	if _, err := h.Acquire("c"); err != ErrTopicLimit {
		t.Fatalf("third topic: %v, want ErrTopicLimit", err)
	}
	// "a" ages past the TTL: its message and its last publication are older.
	a := h.Lookup("a")
	a.mu.Lock()
	old := time.Now().Add(-2 * time.Hour).UnixNano()
	a.hist.ring[a.hist.head].Time = old
	a.idleSince.Store(old)
	a.mu.Unlock()
	h.mu.Lock()
	h.lastSweep = 0
	h.mu.Unlock()
	tc, err := h.Acquire("c")
	if err != nil {
		t.Fatalf("third topic after one expired: %v", err)
	}
	h.Release(tc)
	if h.Lookup("a") != nil || h.Lookup("b") == nil {
		t.Fatal("the sweep removed the wrong topic")
	}
}

// lifecyclePort is the NATS port of TestClusterTopicExpiryEndsNATSSubscription,
// from the topic-lifecycle helper's range.
const lifecyclePort = 19460

// TestClusterTopicExpiryEndsNATSSubscription: on a real nats-server, instance B's
// topic that keeps history holds its NATS subscription while the topic lives; once
// it expired (no subscriber, no kept message, no publication for the TTL) the topic
// leaves B and so does the subscription, and a client that comes back to B with its
// position is told recovery failed with a new epoch. Before, B held one NATS
// subscription per topic it had ever seen.
func TestClusterTopicExpiryEndsNATSSubscription(t *testing.T) {
	startNATSOn(t, lifecyclePort)
	hopts := Options{Loops: 2, HistorySize: 10, HistoryTTL: 300 * time.Millisecond}
	a := startInstanceAt(t, New(hopts), lifecyclePort)
	b := startInstanceAt(t, New(hopts), lifecyclePort)
	c := wsDial(t, "ws://"+b.addr+"/ws/", nil)
	send(t, c, `{"type":"subscribe","topic":"user.9"}`)
	if r := readReply(t, c); r.Type != "subscribed" {
		t.Fatalf("subscribe: %+v", r)
	}
	waitNATSSub(t, b.bridge, "user.9")
	at, err := a.hd.Hub().Acquire("user.9")
	if err != nil {
		t.Fatal(err)
	}
	at.Publish(websocket.TextMessage, []byte(`"from A"`), nil)
	a.hd.Hub().Release(at)
	pos := readReply(t, c)
	if pos.Type != "message" || string(pos.Data) != `"from A"` {
		t.Fatalf("A's message on B: %+v", pos)
	}
	c.Close()
	testkit.WaitFor(t, "B's topic and its NATS subscription to expire", func() bool {
		b.bridge.mu.Lock()
		defer b.bridge.mu.Unlock()
		return b.hd.Hub().Lookup("user.9") == nil && b.bridge.subs["user.9"] == nil && b.bridge.nc.NumSubscriptions() == 0
	})
	testkit.WaitFor(t, "A's topic to expire", func() bool { return a.hd.Hub().Stats().Topics == 0 })
	back := wsDial(t, "ws://"+b.addr+"/ws/", nil)
	send(t, back, fmt.Sprintf(`{"type":"subscribe","topic":"user.9","epoch":%q,"offset":%d}`, pos.Epoch, pos.Offset))
	if r := readReply(t, back); r.Type != "subscribed" || r.Recovery != "failed" || r.Epoch == pos.Epoch {
		t.Fatalf("recovery on B after the topic expired: %+v, want failed with a new epoch", r)
	}
	// The topic made again hears A again.
	waitNATSSub(t, b.bridge, "user.9")
	at, err = a.hd.Hub().Acquire("user.9")
	if err != nil {
		t.Fatal(err)
	}
	defer a.hd.Hub().Release(at)
	at.Publish(websocket.TextMessage, []byte(`"again"`), nil)
	if m := readReply(t, back); m.Type != "message" || string(m.Data) != `"again"` {
		t.Fatalf("A's message after the topic was made again: %+v", m)
	}
}

// TestHistoryRingGrowsWithMessages: a topic's history ring grows with the messages it
// keeps, so a topic holding one message costs a few slots rather than history.size;
// recovery still gives exactly the kept messages in order through growing, wrapping
// and expiry, and an emptied ring is let go. Before, the first message allocated
// history.size slots (800 KB a topic with size 100,000, whatever it held).
func TestHistoryRingGrowsWithMessages(t *testing.T) {
	big := New(Options{Loops: 1, HistorySize: 100000})
	tp, err := big.Acquire("one")
	if err != nil {
		t.Fatal(err)
	}
	tp.Publish(websocket.TextMessage, []byte("1"), nil)
	if n := cap(tp.hist.ring); n > minRing {
		t.Fatalf("one kept message holds a ring of %d slots", n)
	}
	big.Release(tp)

	h := New(Options{Loops: 1, HistorySize: 20, HistoryTTL: time.Hour})
	defer h.Close()
	tp, err = h.Acquire("t")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(tp)
	for i := 0; i < 5; i++ {
		tp.Publish(websocket.TextMessage, []byte("x"), nil)
	}
	// The three oldest expire: the head moves inside a ring that is not full.
	tp.mu.Lock()
	for i := 0; i < 3; i++ {
		tp.hist.at(i).Time = time.Now().Add(-2 * time.Hour).UnixNano()
	}
	tp.mu.Unlock()
	epoch, _ := tp.Epoch()
	if _, _, _, err := tp.Recover(epoch, 2, time.Now()); err == nil {
		t.Fatal("recovered messages that expired")
	}
	for i := 0; i < 45; i++ { // grows to 20 slots, then wraps
		tp.Publish(websocket.TextMessage, []byte("y"), nil)
	}
	if n := len(tp.hist.ring); n != 20 {
		t.Fatalf("ring of %d slots, want history.size 20", n)
	}
	ms, _, next, err := tp.Recover(epoch, 30, time.Now())
	if err != nil || len(ms) != 20 || next != 51 {
		t.Fatalf("recovered %d (next %d, %v), want offsets 31-50", len(ms), next, err)
	}
	for i, m := range ms {
		if m.Offset != uint64(31+i) {
			t.Fatalf("message %d has offset %d, want %d", i, m.Offset, 31+i)
		}
		m.Release()
	}
	if _, _, _, err := tp.Recover(epoch, 29, time.Now()); err == nil {
		t.Fatal("recovered from an offset the ring no longer holds")
	}
	tp.Gap()
	if tp.hist.ring != nil {
		t.Fatal("an emptied history keeps its ring")
	}
}
