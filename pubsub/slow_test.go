package pubsub

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gorilla/websocket"
)

// smallRcvBuf is a net.Dialer Control that gives the socket a 4 KiB receive buffer,
// so that a client that does not read fills up quickly.
func smallRcvBuf(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	if err != nil {
		return err
	}
	return serr
}

// dialSmallBuffer connects to addr with a 4 KiB receive buffer (smallRcvBuf).
func dialSmallBuffer(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: smallRcvBuf}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// slowDialer makes WebSocket connections with a 4 KiB receive buffer (smallRcvBuf).
func slowDialer() *websocket.Dialer {
	nd := net.Dialer{Control: smallRcvBuf}
	return &websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		return nd.DialContext(ctx, n, a)
	}}
}

// TestSlowConsumerDropOldest lets one protocol subscriber stop reading while a fast
// one reads: the slow one's queue stays bounded, the oldest messages are dropped and
// counted, and once it reads again it gets a "dropped" notice with the count and
// then the newest messages; the fast one misses nothing.
func TestSlowConsumerDropOldest(t *testing.T) {
	hd, addr := startHub(t, Options{Queue: 8, SocketBytes: 4 << 10}, HandlerOptions{Mode: ProtocolMode})
	slow, _, err := slowDialer().Dial("ws://"+addr+"/ws/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast := wsDial(t, "ws://"+addr+"/ws/", nil)
	for _, c := range []*websocket.Conn{slow, fast} {
		send(t, c, `{"type":"subscribe","topic":"t"}`)
		readReply(t, c)
	}
	topic := hd.Hub().Lookup("t")
	payload := `"` + strings.Repeat("x", 8<<10) + `"`
	const n = 2000 // 16 MiB: more than the socket buffers hold
	fast.SetReadDeadline(time.Now().Add(60 * time.Second))
	for i := 0; i < n; i++ {
		topic.Publish(websocket.TextMessage, []byte(payload), nil)
		if _, _, err := fast.ReadMessage(); err != nil { // in step: the fast one never lags
			t.Fatalf("fast subscriber at %d: %v", i, err)
		}
	}
	// The slow subscriber's loop may still be delivering the last publishes
	// (and counting their drops) after the fast one read them: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for hd.Hub().Stats().Dropped == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := hd.Hub().Stats(); st.Dropped == 0 {
		t.Fatalf("nothing dropped for the slow subscriber: %+v", st)
	}
	// The slow one now reads everything: messages, one dropped notice, messages.
	slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	var msgs, dropped int
	for msgs+dropped < n {
		var r answer
		if err := slow.ReadJSON(&r); err != nil {
			t.Fatalf("slow reader after %d messages: %v", msgs, err)
		}
		switch r.Type {
		case "message":
			msgs++
		case "dropped":
			dropped += r.Count
		default:
			t.Fatalf("unexpected %+v", r)
		}
		if dropped > 0 && msgs+dropped == n {
			break
		}
	}
	// Every drop the client was told of is counted by now: it was counted
	// before the notice was queued.
	if st := hd.Hub().Stats(); uint64(dropped) != st.Dropped || msgs+dropped != n {
		t.Fatalf("slow subscriber: %d messages + %d dropped (hub counted %d), want %d in all", msgs, dropped, st.Dropped, n)
	}
}

// TestSlowConsumerClose closes a subscriber whose queue overflows with 1008, while
// the others go on.
func TestSlowConsumerClose(t *testing.T) {
	hd, addr := startHub(t, Options{Queue: 8, SocketBytes: 4 << 10, Policy: Close}, HandlerOptions{Mode: PathMode})
	slow, _, err := slowDialer().Dial("ws://"+addr+"/ws/room", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	waitCount(t, hd.Hub(), "room", 1)
	topic := hd.Hub().Lookup("room")
	big := make([]byte, 8<<10)
	for i := 0; i < 2000 && hd.Hub().Stats().Closed == 0; i++ {
		topic.Publish(websocket.BinaryMessage, big, nil)
		time.Sleep(50 * time.Microsecond)
	}
	testkit.WaitFor(t, "the slow subscriber closed", func() bool { return hd.Hub().Stats().Closed == 1 })
	slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := slow.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			t.Fatalf("slow subscriber ended with %v, want close 1008", err)
		}
		break
	}
	waitCount(t, hd.Hub(), "room", 0)
}

// TestSlowSSEToldDropped: an SSE subscriber that stops reading while messages are
// published loses the oldest under drop_oldest, and once it reads again it is told
// how many, with an event named "dropped": events plus the counts it was told make
// up everything published. Before, an SSE subscriber lost them without a word (only
// protocol WebSocket clients were told).
func TestSlowSSEToldDropped(t *testing.T) {
	hd, addr := startHub(t, Options{Queue: 8, SocketBytes: 4 << 10}, HandlerOptions{Mode: ProtocolMode})
	c := dialSmallBuffer(t, addr)
	if _, err := c.Write([]byte("GET /ws/sse/t HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	waitCount(t, hd.Hub(), "t", 1)
	topic := hd.Hub().Lookup("t")
	const n = 2000
	payload := []byte(strings.Repeat("x", 8<<10))
	for i := 0; i < n; i++ {
		topic.Publish(websocket.TextMessage, payload, nil)
	}
	testkit.WaitFor(t, "messages dropped", func() bool { return hd.Hub().Stats().Dropped > 0 })
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	for { // the head and the stream's first block (": subscribed" and its id)
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == ": subscribed\n" {
			break
		}
	}
	if _, err := br.ReadString('\n'); err != nil { // the position's id
		t.Fatal(err)
	}
	events, dropped := 0, 0
	for events+dropped < n {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d events and %d dropped: %v", events, dropped, err)
		}
		switch {
		case strings.HasPrefix(l, "id: "):
			events++
		case l == "event: dropped\n":
			d, err := br.ReadString('\n')
			k, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(d, "data: "), "\n"))
			if err != nil || k <= 0 {
				t.Fatalf("dropped event data %q, %v", d, err)
			}
			dropped += k
		}
	}
	if dropped == 0 || uint64(dropped) != hd.Hub().Stats().Dropped {
		t.Fatalf("%d events, told of %d dropped, hub counted %d", events, dropped, hd.Hub().Stats().Dropped)
	}
}
