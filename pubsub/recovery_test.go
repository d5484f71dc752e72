package pubsub

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
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
