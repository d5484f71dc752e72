package pubsub

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
	"github.com/gorilla/websocket"
)

// startHubOn is startHub on engine eng (epoll or io_uring); it skips where the
// kernel has no io_uring.
func startHubOn(t *testing.T, eng string, hopts Options, o HandlerOptions) (*Handler, string) {
	t.Helper()
	if _, err := engine.New(engine.Config{Workers: 1, Backend: eng}); err != nil {
		t.Skipf("no %s engine here: %v", eng, err)
	}
	hopts.Loops = 2
	if o.Prefix == "" {
		o.Prefix = "/ws/"
	}
	hd, err := NewHandler(New(hopts), o)
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, hd, func(so *server.Options) { so.Workers = 2; so.Engine = eng })
	return hd, srv.Addr()
}

// TestLongRecoveryPaced recovers 2,000 missed messages of 8 KiB (16 MiB, far more than
// the socket buffers and the WebSocket layer's reply mark hold) on a client that does
// not read at first: every missed message arrives, in order, then a live one. Before,
// the replay was queued at once as replies, went over the reply mark and the client
// was closed with 1008 after about 1,100 of the messages its reply had said it would
// get.
func TestLongRecoveryPaced(t *testing.T) {
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			hd, addr := startHubOn(t, eng, Options{HistorySize: 2000}, HandlerOptions{Mode: ProtocolMode})
			first := wsDial(t, "ws://"+addr+"/ws/", nil)
			send(t, first, `{"type":"subscribe","id":1,"topic":"t"}`)
			pos := readReply(t, first)
			first.Close()
			topic, err := hd.Hub().Acquire("t")
			if err != nil {
				t.Fatal(err)
			}
			defer hd.Hub().Release(topic)
			const n = 2000
			payload := `"` + strings.Repeat("x", 8<<10) + `"`
			for i := 0; i < n; i++ {
				topic.Publish(websocket.TextMessage, []byte(payload), nil)
			}
			c, _, err := slowDialer().Dial("ws://"+addr+"/ws/", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			send(t, c, `{"type":"subscribe","id":2,"topic":"t","epoch":"`+pos.Epoch+`","offset":0}`)
			// Not reading yet: the server gets as far as the client's buffers let it.
			waitCount(t, hd.Hub(), "t", 1)
			time.Sleep(300 * time.Millisecond)
			live := topic.Publish(websocket.TextMessage, []byte(`"live"`), nil)
			if r := readReply(t, c); r.Type != "subscribed" || r.Recovery != "ok" || r.Missed != n {
				t.Fatalf("subscribe reply %+v, want recovery ok with %d missed", r, n)
			}
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			for want := uint64(1); want <= live; want++ {
				_, p, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("after %d of %d messages: %v", want-1, live, err)
				}
				var r answer
				if err := json.Unmarshal(p, &r); err != nil || r.Type != "message" || r.Offset != want {
					t.Fatalf("message %d: %.80s (%v)", want, p, err)
				}
			}
			if st := hd.WebSocketStats(); st.Overflows != 0 {
				t.Fatalf("%d WebSockets closed for overflow", st.Overflows)
			}
		})
	}
}

// eventSource reads an event stream as EventSource does (HTML, "Parsing an event
// stream"): it keeps the last event id, which the browser sends back as Last-Event-ID
// when it reconnects. A block without data dispatches nothing but still sets the last
// event id.
type eventSource struct {
	lines  <-chan string
	lastID string
}

// block reads one block (up to a blank line) and returns the event it dispatches,
// typ "" when it dispatches none.
func (es *eventSource) block(t *testing.T) (typ, data string) {
	t.Helper()
	var idBuf, evBuf string
	var dataBuf []string
	idSet := false
	deadline := time.After(10 * time.Second)
	for {
		var l string
		select {
		case v, ok := <-es.lines:
			if !ok {
				t.Fatal("stream ended inside a block")
			}
			l = v
		case <-deadline:
			t.Fatal("no complete block within 10s")
		}
		if l == "" {
			if idSet {
				es.lastID = idBuf
			}
			if len(dataBuf) == 0 {
				return "", ""
			}
			if evBuf == "" {
				evBuf = "message"
			}
			return evBuf, strings.Join(dataBuf, "\n")
		}
		if l[0] == ':' {
			continue
		}
		name, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			idBuf, idSet = value, true
		case "data":
			dataBuf = append(dataBuf, value)
		case "event":
			evBuf = value
		}
	}
}

// connect opens the stream as EventSource does, again after an error: with
// Last-Event-ID once it has seen an id.
func (es *eventSource) connect(t *testing.T, url string) {
	t.Helper()
	if es.lastID == "" {
		es.lines = curlStream(t, url)
		return
	}
	es.lines = curlStream(t, url, "Last-Event-ID: "+es.lastID)
}

// TestSSEReconnectAfterFreshOrFailedStart: an EventSource that reconnects before any
// message arrived recovers what was published meanwhile, both after a fresh start and
// after a failed recovery (a Last-Event-ID of an earlier epoch). Before, neither start
// carried an id, so the browser reconnected without Last-Event-ID (a fresh stream:
// the messages were lost) or with the stale one (recovery failed again), although the
// history held every message.
func TestSSEReconnectAfterFreshOrFailedStart(t *testing.T) {
	hd, addr := startHub(t, Options{HistorySize: 16}, HandlerOptions{Mode: ProtocolMode})
	url := "http://" + addr + "/ws/sse/news"
	topic, err := hd.Hub().Acquire("news")
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Hub().Release(topic)
	topic.Publish(websocket.TextMessage, []byte("before"), nil)

	for i, start := range []string{"", "0badc0ffee00-7"} {
		es := &eventSource{lastID: start}
		es.connect(t, url)
		typ, data := es.block(t)
		epoch, next := topic.Epoch()
		switch {
		case start == "" && typ != "":
			t.Fatalf("fresh stream began with event %s %q", typ, data)
		case start != "" && (typ != "recovery-failed" || es.lastID != data):
			t.Fatalf("stale id: event %s %q, last id %q; want recovery-failed naming the position it set", typ, data, es.lastID)
		}
		if want := epoch + "-" + strconv.FormatUint(next-1, 10); es.lastID != want {
			t.Fatalf("start %q: last event id %q, want %q", start, es.lastID, want)
		}
		// The client goes away (its curl runs on, a subscriber that does not
		// matter), messages are published, and it reconnects.
		waitCount(t, hd.Hub(), "news", int64(2*i+1))
		missed := []string{"missed-a" + strconv.Itoa(i), "missed-b" + strconv.Itoa(i)}
		for _, m := range missed {
			topic.Publish(websocket.TextMessage, []byte(m), nil)
		}
		es.connect(t, url)
		for _, m := range missed {
			if typ, data := es.block(t); typ != "message" || data != m {
				t.Fatalf("start %q, reconnected with %q: got %s %q, want the missed %q", start, es.lastID, typ, data, m)
			}
		}
		waitCount(t, hd.Hub(), "news", int64(2*i+2))
	}
}

// queuedFor returns the output queued for each subscriber of topic t, read on the
// subscribers' loops.
func queuedFor(t *testing.T, h *Hub, topic *Topic) []int {
	t.Helper()
	var out []int
	for i := range h.loops {
		l := h.loops[i].loop.Load()
		if l == nil {
			continue
		}
		ch := make(chan []int, 1)
		l.Post(func() {
			var q []int
			for _, s := range topic.subs[i].list {
				q = append(q, s.c.buffered())
			}
			ch <- q
		})
		select {
		case q := <-ch:
			out = append(out, q...)
		case <-time.After(5 * time.Second):
			t.Fatalf("loop %d did not answer", i)
		}
	}
	return out
}

// TestSSELongRecoveryPaced recovers 2,000 missed messages of 8 KiB (16 MiB) on SSE
// streams whose clients do not read at first: the server queues little more than its
// socket mark for each (the rest stays in the history, by reference), and once a
// client reads it gets every message in order. Before, the whole replay was copied
// into each stream's output at once: 20 such streams of a gale process took its
// resident memory from 39 MB to 508 MB.
func TestSSELongRecoveryPaced(t *testing.T) {
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			hd, addr := startHubOn(t, eng, Options{HistorySize: 2000}, HandlerOptions{Mode: ProtocolMode})
			h := hd.Hub()
			topic, err := h.Acquire("t")
			if err != nil {
				t.Fatal(err)
			}
			defer h.Release(topic)
			const n = 2000
			payload := []byte(strings.Repeat("x", 8<<10))
			for i := 0; i < n; i++ {
				topic.Publish(websocket.TextMessage, payload, nil)
			}
			epoch, _ := topic.Epoch()
			const streams = 4
			var conns []net.Conn
			for i := 0; i < streams; i++ {
				c := dialSmallBuffer(t, addr)
				conns = append(conns, c)
				fmt.Fprintf(c, "GET /ws/sse/t HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nLast-Event-ID: %s-0\r\n\r\n", epoch)
			}
			waitCount(t, h, "t", streams)
			time.Sleep(200 * time.Millisecond) // the server writes what the sockets take
			for _, q := range queuedFor(t, h, topic) {
				if q > h.opts.SocketBytes+16<<10 {
					t.Fatalf("%d bytes queued for a subscriber that does not read, want at most about %d", q, h.opts.SocketBytes)
				}
			}
			for _, c := range conns {
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReader(c)
				want := 1
				for want <= n {
					l, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("after %d of %d events: %v", want-1, n, err)
					}
					if id, ok := strings.CutPrefix(l, "id: "+epoch+"-"); ok {
						if id != strconv.Itoa(want)+"\n" {
							t.Fatalf("event id %q, want %d", id, want)
						}
						want++
					}
				}
			}
		})
	}
}

// TestUnsubscribeDropsWaitingMessages: a client that unsubscribes while a long
// recovery of the topic is still waiting for it to read gets nothing more of the
// topic after its "unsubscribed" reply: the waiting messages are dropped, not sent.
func TestUnsubscribeDropsWaitingMessages(t *testing.T) {
	hd, addr := startHub(t, Options{HistorySize: 2000}, HandlerOptions{Mode: ProtocolMode})
	topic, err := hd.Hub().Acquire("t")
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Hub().Release(topic)
	payload := `"` + strings.Repeat("x", 8<<10) + `"`
	for i := 0; i < 2000; i++ {
		topic.Publish(websocket.TextMessage, []byte(payload), nil)
	}
	epoch, _ := topic.Epoch()
	c, _, err := slowDialer().Dial("ws://"+addr+"/ws/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send(t, c, `{"type":"subscribe","id":1,"topic":"t","epoch":"`+epoch+`","offset":0}`)
	send(t, c, `{"type":"unsubscribe","id":2,"topic":"t"}`)
	send(t, c, `{"type":"presence","id":3,"topic":"t"}`)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	unsubscribed := false
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var r answer
		if err := json.Unmarshal(p, &r); err != nil {
			t.Fatal(err)
		}
		if r.Type == "message" && unsubscribed {
			t.Fatalf("offset %d of the topic after the unsubscribed reply", r.Offset)
		}
		unsubscribed = unsubscribed || r.Type == "unsubscribed"
		if r.Type == "presence" {
			break
		}
	}
	// Anything still on its way would follow the presence reply.
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, p, err := c.ReadMessage(); err == nil {
		t.Fatalf("after the unsubscribed reply: %.60s", p)
	}
}

// TestRecoveredMessagesCountAsDelivered recovers missed messages on a WebSocket:
// each one sent counts in Stats.Delivered (gale_pubsub_messages_total
// {event="delivered"}) like a live delivery (SSE replays through the same backlog). The replay of a recovery was never
// counted, so a hub whose clients came back after a restart showed no deliveries
// for the messages they caught up on.
func TestRecoveredMessagesCountAsDelivered(t *testing.T) {
	hd, addr := startHubOn(t, engine.BackendEpoll, Options{HistorySize: 100}, HandlerOptions{Mode: ProtocolMode})
	first := wsDial(t, "ws://"+addr+"/ws/", nil)
	send(t, first, `{"type":"subscribe","id":1,"topic":"t"}`)
	pos := readReply(t, first)
	first.Close()
	waitCount(t, hd.Hub(), "t", 0)
	topic, err := hd.Hub().Acquire("t")
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Hub().Release(topic)
	const n = 5
	for range n {
		topic.Publish(websocket.TextMessage, []byte(`"m"`), nil)
	}
	if d := hd.Hub().Stats().Delivered; d != 0 {
		t.Fatalf("delivered %d with no subscriber, want 0", d)
	}
	c := wsDial(t, "ws://"+addr+"/ws/", nil)
	defer c.Close()
	send(t, c, `{"type":"subscribe","id":2,"topic":"t","epoch":"`+pos.Epoch+`","offset":0}`)
	if r := readReply(t, c); r.Recovery != "ok" || r.Missed != n {
		t.Fatalf("subscribe reply %+v, want recovery ok with %d missed", r, n)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range n {
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatalf("after %d of %d messages: %v", i, n, err)
		}
	}
	testkit.WaitFor(t, "the recovered messages counted", func() bool { return hd.Hub().Stats().Delivered == n })
	topic.Publish(websocket.TextMessage, []byte(`"live"`), nil)
	testkit.WaitFor(t, "the live message counted", func() bool { return hd.Hub().Stats().Delivered == n+1 })
}
