package pubsub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
	"github.com/gale-server/gale/wsserver"
	"github.com/gorilla/websocket"
)

// startHub serves a Handler on an ephemeral port with two loops.
func startHub(t *testing.T, hopts Options, o HandlerOptions) (*Handler, string) {
	t.Helper()
	hopts.Loops = 2
	h := New(hopts)
	if o.Prefix == "" {
		o.Prefix = "/ws/"
	}
	hd, err := NewHandler(h, o)
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, hd, func(so *server.Options) { so.Workers = 2 })
	return hd, srv.Addr()
}

func wsDial(t *testing.T, url string, hdr http.Header) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitCount waits until the hub counts n subscribers of topic.
func waitCount(t *testing.T, h *Hub, topic string, n int64) {
	t.Helper()
	testkit.WaitFor(t, fmt.Sprintf("%d subscribers of %s", n, topic), func() bool { return h.Count(topic) == n })
}

// TestPathModeFanOut puts 20 clients (over both loops) on one path: every message one
// sends reaches the 19 others in order, and not itself; another path is another topic.
func TestPathModeFanOut(t *testing.T) {
	hd, addr := startHub(t, Options{}, HandlerOptions{Mode: PathMode})
	const n = 20
	cs := make([]*websocket.Conn, n)
	for i := range cs {
		cs[i] = wsDial(t, "ws://"+addr+"/ws/room", nil)
	}
	other := wsDial(t, "ws://"+addr+"/ws/other", nil)
	waitCount(t, hd.Hub(), "room", n)
	const msgs = 50
	for k := 0; k < msgs; k++ {
		if err := cs[0].WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "m%d", k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cs[1].WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		cs[i].SetReadDeadline(time.Now().Add(5 * time.Second))
		seen := 0
		gotBin := i == 1 // the binary sender does not get its own message
		for seen < msgs || !gotBin {
			op, p, err := cs[i].ReadMessage()
			if err != nil {
				t.Fatalf("client %d after %d: %v", i, seen, err)
			}
			if op == websocket.BinaryMessage {
				if string(p) != "\x00\x01\x02" || gotBin {
					t.Fatalf("client %d: unexpected binary %q", i, p)
				}
				gotBin = true
				continue
			}
			if want := fmt.Sprintf("m%d", seen); string(p) != want {
				t.Fatalf("client %d: got %q, want %q", i, p, want)
			}
			seen++
		}
	}
	// The sender got only the binary message; the other topic got nothing.
	cs[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if op, p, err := cs[0].ReadMessage(); err != nil || op != websocket.BinaryMessage || len(p) != 3 {
		t.Fatalf("sender: %v %q %v", op, p, err)
	}
	other.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, p, err := other.ReadMessage(); err == nil {
		t.Fatalf("another topic received %q", p)
	}
	for _, c := range cs {
		c.Close()
	}
	waitCount(t, hd.Hub(), "room", 0)
	if st := hd.Hub().Stats(); st.Delivered < msgs*(n-1) {
		t.Fatalf("delivered %d, want at least %d", st.Delivered, msgs*(n-1))
	}
}

type answer struct {
	Type        string          `json:"type"`
	ID          json.RawMessage `json:"id"`
	Topic       string          `json:"topic"`
	Code        string          `json:"code"`
	Offset      uint64          `json:"offset"`
	Epoch       string          `json:"epoch"`
	Recovery    string          `json:"recovery"`
	Missed      int             `json:"missed"`
	Data        json.RawMessage `json:"data"`
	Subscribers int64           `json:"subscribers"`
	Count       int             `json:"count"`
}

func readReply(t *testing.T, c *websocket.Conn) answer {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, p, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var r answer
	if err := json.Unmarshal(p, &r); err != nil {
		t.Fatalf("reply %q: %v", p, err)
	}
	return r
}

func send(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

// TestProtocol runs the JSON protocol: subscribe to two topics, publish, replies
// with ids, every error reply, unsubscribe, presence.
func TestProtocol(t *testing.T) {
	hd, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode, MaxTopics: 2})
	a := wsDial(t, "ws://"+addr+"/ws/", nil)
	b := wsDial(t, "ws://"+addr+"/ws/", nil)
	send(t, a, `{"type":"subscribe","id":1,"topic":"news"}`)
	if r := readReply(t, a); r.Type != "subscribed" || string(r.ID) != "1" || r.Topic != "news" || r.Epoch == "" || r.Offset != 0 {
		t.Fatalf("subscribe reply %+v", r)
	}
	send(t, a, `{"type":"subscribe","id":"x","topic":"sport"}`)
	if r := readReply(t, a); r.Type != "subscribed" || string(r.ID) != `"x"` {
		t.Fatalf("second subscribe reply %+v", r)
	}
	for _, tc := range []struct{ cmd, code string }{
		{`not json`, ErrCodeBadRequest},
		{`{"type":"dance","id":3,"topic":"news"}`, ErrCodeBadRequest},
		{`{"id":3,"topic":"news"}`, ErrCodeBadRequest},
		{`{"type":"subscribe","id":3,"topic":""}`, ErrCodeBadTopic},
		{`{"type":"subscribe","id":3,"topic":"a\u0001b"}`, ErrCodeBadTopic},
		{`{"type":"subscribe","id":3,"topic":"news"}`, ErrCodeSubscribed},
		{`{"type":"subscribe","id":3,"topic":"third"}`, ErrCodeTooMany},
		{`{"type":"unsubscribe","id":3,"topic":"nope"}`, ErrCodeNotSubscribed},
		{`{"type":"publish","id":3,"topic":"news"}`, ErrCodeBadRequest},
		{`{"type":"publish","id":3,"topic":"news","data":1,"extra":2}`, ErrCodeBadRequest},
		{`{"type":"publish","id":{},"topic":"news","data":1}`, ErrCodeBadRequest},
	} {
		send(t, a, tc.cmd)
		if r := readReply(t, a); r.Type != "error" || r.Code != tc.code {
			t.Fatalf("%s: reply %+v, want error %s", tc.cmd, r, tc.code)
		}
	}
	waitCount(t, hd.Hub(), "news", 1)
	send(t, b, `{"type":"publish","id":7,"topic":"news","data":{"headline":"gale ships"}}`)
	if r := readReply(t, b); r.Type != "published" || string(r.ID) != "7" || r.Offset != 1 {
		t.Fatalf("publish reply %+v", r)
	}
	if r := readReply(t, a); r.Type != "message" || r.Topic != "news" || r.Offset != 1 || string(r.Data) != `{"headline":"gale ships"}` {
		t.Fatalf("delivery %+v", r)
	}
	send(t, b, `{"type":"presence","id":8,"topic":"news"}`)
	if r := readReply(t, b); r.Type != "presence" || r.Subscribers != 1 {
		t.Fatalf("presence %+v", r)
	}
	send(t, a, `{"type":"unsubscribe","id":9,"topic":"news"}`)
	if r := readReply(t, a); r.Type != "unsubscribed" || string(r.ID) != "9" {
		t.Fatalf("unsubscribe %+v", r)
	}
	waitCount(t, hd.Hub(), "news", 0)
	send(t, b, `{"type":"publish","id":10,"topic":"sport","data":"goal"}`)
	readReply(t, b)
	if r := readReply(t, a); r.Type != "message" || r.Topic != "sport" || string(r.Data) != `"goal"` {
		t.Fatalf("delivery after unsubscribe %+v", r)
	}
	// HTTP presence.
	_, body := testkit.Curl(t, "-s", "http://"+addr+"/ws/presence/sport")
	if !strings.Contains(body, `"subscribers":1`) {
		t.Fatalf("presence API: %s", body)
	}
}

// wsOptionsNoTimers turns keep-alive pings and the idle timeout off, for clients
// that only read.
func wsOptionsNoTimers() wsserver.Options {
	return wsserver.Options{PingInterval: -1, IdleTimeout: -1}
}

// TestCompressedOnce subscribes a client with permessage-deflate and one without to a
// path: both get the message, and the hub built one compressed frame (RSV1) for it.
func TestCompressedOnce(t *testing.T) {
	hd, addr := startHub(t, Options{HistorySize: 1}, HandlerOptions{Mode: PathMode, WebSocket: wsserver.Options{Compression: true}})
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
	z, resp, err := d.Dial("ws://"+addr+"/ws/room", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if resp.Header.Get("Sec-WebSocket-Extensions") == "" {
		t.Fatal("permessage-deflate not negotiated")
	}
	plain := wsDial(t, "ws://"+addr+"/ws/room", nil)
	pub := wsDial(t, "ws://"+addr+"/ws/room", nil)
	waitCount(t, hd.Hub(), "room", 3)
	msg := []byte(strings.Repeat("compress me once, ", 100))
	if err := pub.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*websocket.Conn{z, plain} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, p, err := c.ReadMessage(); err != nil || string(p) != string(msg) {
			t.Fatalf("got %d bytes, %v", len(p), err)
		}
	}
	tp := hd.Hub().Lookup("room")
	tp.mu.Lock()
	m := tp.hist.ring[tp.hist.head]
	tp.mu.Unlock()
	if f := m.Frame(EncRawZ); f == nil || f[0]&0x40 == 0 || len(f) >= len(msg) {
		t.Fatalf("compressed frame: %d bytes, header %x", len(f), f[:2])
	}
	if f := m.Frame(EncRaw); f[0]&0x40 != 0 {
		t.Fatal("the plain frame has RSV1")
	}
}
