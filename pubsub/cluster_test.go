package pubsub

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
	"github.com/gorilla/websocket"
)

// natsPort is the NATS port of the cluster test, from the pubsub helper's range
// (it must be fixed: the test restarts the server on the same port).
const natsPort = 20790

// startNATS runs Debian's nats-server on 127.0.0.1:natsPort until stop is called.
func startNATS(t *testing.T) (stop func()) {
	t.Helper()
	return startNATSOn(t, natsPort)
}

// startNATSOn runs nats-server on 127.0.0.1:port until stop is called.
func startNATSOn(t *testing.T, port int) (stop func()) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not installed (apt-get install -y nats-server)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	errs, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(errs)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Server is ready") {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("nats-server did not start")
	}
	done := false
	stop = func() {
		if !done {
			done = true
			cancel()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	return stop
}

type instance struct {
	hd     *Handler
	bridge *NATSBridge
	addr   string
}

func startInstance(t *testing.T) *instance {
	t.Helper()
	return startInstanceOf(t, New(Options{Loops: 2, HistorySize: 100}))
}

// startInstanceOf serves hub h (of two loops) joined to the NATS server of natsPort.
func startInstanceOf(t *testing.T, h *Hub) *instance {
	t.Helper()
	return startInstanceAt(t, h, natsPort)
}

// startInstanceAt serves hub h (of two loops) joined to the NATS server of port.
func startInstanceAt(t *testing.T, h *Hub, port int) *instance {
	t.Helper()
	b, err := NewNATSBridge(h, fmt.Sprintf("nats://127.0.0.1:%d", port), "gale.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	hd, err := NewHandler(h, HandlerOptions{Prefix: "/ws/", Mode: ProtocolMode})
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, hd, func(so *server.Options) { so.Workers = 2 })
	testkit.WaitFor(t, "NATS connected", func() bool { return b.Stats().Connected })
	return &instance{hd: hd, bridge: b, addr: srv.Addr()}
}

type delivery2 struct {
	Type  string
	Topic string
	Data  struct{ P, S int }
}

// TestClusterNATS runs three hubs joined by a real nats-server. Subscribers on every
// instance receive every message of publishers on every instance exactly once and
// in each publisher's order. With NATS stopped, local delivery goes on; after it
// restarts the bridges reconnect, report the gap (new epochs) and carry messages
// again.
func TestClusterNATS(t *testing.T) {
	stop := startNATS(t)
	ins := []*instance{startInstance(t), startInstance(t), startInstance(t)}
	const subsPer, pubs, msgs = 4, 3, 200
	var subs []*websocket.Conn
	for _, in := range ins {
		for i := 0; i < subsPer; i++ {
			c := wsDial(t, "ws://"+in.addr+"/ws/", nil)
			send(t, c, `{"type":"subscribe","topic":"room"}`)
			if r := readReply(t, c); r.Type != "subscribed" {
				t.Fatalf("subscribe: %+v", r)
			}
			subs = append(subs, c)
		}
		if err := in.bridge.nc.Flush(); err != nil { // the SUB has reached the server
			t.Fatal(err)
		}
	}
	// One publisher per instance, all at once.
	errs := make(chan error, pubs)
	for p := 0; p < pubs; p++ {
		c := wsDial(t, "ws://"+ins[p].addr+"/ws/", nil)
		go func() {
			for s := 0; s < msgs; s++ {
				if err := c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"publish","topic":"room","data":{"p":%d,"s":%d}}`, p, s)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for p := 0; p < pubs; p++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range subs {
		next := make([]int, pubs)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for n := 0; n < pubs*msgs; n++ {
			var d delivery2
			if err := c.ReadJSON(&d); err != nil {
				t.Fatalf("subscriber %d after %d messages: %v", i, n, err)
			}
			if d.Type != "message" || d.Data.P < 0 || d.Data.P >= pubs {
				t.Fatalf("subscriber %d: unexpected %+v", i, d)
			}
			if d.Data.S != next[d.Data.P] {
				t.Fatalf("subscriber %d: publisher %d message %d, want %d (lost, duplicated or reordered)", i, d.Data.P, d.Data.S, next[d.Data.P])
			}
			next[d.Data.P]++
		}
	}

	// NATS down: local delivery continues (and is the next message of the local
	// subscribers, so nothing more than was sent came in the first part).
	epoch0, _ := ins[0].hd.Hub().Lookup("room").Epoch()
	stop()
	testkit.WaitFor(t, "bridges see NATS down", func() bool { return !ins[0].bridge.Stats().Connected })
	pub := wsDial(t, "ws://"+ins[0].addr+"/ws/", nil)
	send(t, pub, `{"type":"publish","topic":"room","data":{"p":9,"s":0}}`)
	for _, c := range subs[:subsPer] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var d delivery2
		if err := c.ReadJSON(&d); err != nil || d.Data.P != 9 {
			t.Fatalf("local delivery with NATS down: %+v %v", d, err)
		}
	}
	// Back up: reconnect with backoff, gap reported, messages flow again.
	startNATS(t)
	for _, in := range ins {
		testkit.WaitFor(t, "bridge reconnected", func() bool { return in.bridge.Stats().Gaps == 1 && in.bridge.Stats().Connected })
		if err := in.bridge.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if epoch1, _ := ins[0].hd.Hub().Lookup("room").Epoch(); epoch1 == epoch0 {
		t.Fatal("the gap did not renew the epoch")
	}
	// The message published while NATS was down may still reach the other instances
	// from the client's reconnect buffer; nothing else may come before the next one.
	send(t, pub, `{"type":"publish","topic":"room","data":{"p":8,"s":0}}`)
	for i, c := range subs {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			var d delivery2
			if err := c.ReadJSON(&d); err != nil {
				t.Fatalf("subscriber %d after the reconnect: %v", i, err)
			}
			if d.Type == "message" && d.Data.P == 8 {
				break
			}
			if i < subsPer || d.Data.P != 9 {
				t.Fatalf("subscriber %d: unexpected %+v", i, d)
			}
		}
	}
}

// TestClusterNATSDownAtStart starts a hub whose NATS server is not running yet: local
// delivery works from the start, and the first connection, when nats-server comes up,
// is a gap like a reconnection (counted, new epoch), so a position taken before it
// fails to recover instead of skipping what other instances published meanwhile.
func TestClusterNATSDownAtStart(t *testing.T) {
	if _, err := exec.LookPath("nats-server"); err != nil {
		t.Skip("nats-server not installed (apt-get install -y nats-server)")
	}
	const port = 22230 // the pubsub-peers helper's range; fixed: the server starts later
	h := New(Options{Loops: 2, HistorySize: 100})
	b, err := NewNATSBridge(h, fmt.Sprintf("nats://127.0.0.1:%d", port), "gale.downstart", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if st := b.Stats(); st.Connected || st.Gaps != 0 {
		t.Fatalf("bridge without a NATS server: %+v", st)
	}
	hd, err := NewHandler(h, HandlerOptions{Prefix: "/ws/", Mode: ProtocolMode})
	if err != nil {
		t.Fatal(err)
	}
	addr := servertest.Start(t, hd, func(so *server.Options) { so.Workers = 2 }).Addr()
	sub := wsDial(t, "ws://"+addr+"/ws/", nil)
	send(t, sub, `{"type":"subscribe","topic":"room"}`)
	first := readReply(t, sub)
	if first.Type != "subscribed" {
		t.Fatalf("subscribe: %+v", first)
	}
	pub := wsDial(t, "ws://"+addr+"/ws/", nil)
	send(t, pub, `{"type":"publish","topic":"room","data":1}`)
	if r := readReply(t, pub); r.Type != "published" || r.Offset != 1 {
		t.Fatalf("publish: %+v", r)
	}
	if m := readReply(t, sub); m.Type != "message" || m.Offset != 1 {
		t.Fatalf("local delivery before NATS is up: %+v", m)
	}

	startNATSOn(t, port)
	// IsConnected turns true before nats.go's callback goroutine runs ConnectHandler,
	// so the gap is waited for, then checked to be exactly one.
	testkit.WaitFor(t, "bridge connected with its gap", func() bool { st := b.Stats(); return st.Connected && st.Gaps >= 1 })
	if g := b.Stats().Gaps; g != 1 {
		t.Fatalf("gaps after the first connection %d, want 1", g)
	}
	late := wsDial(t, "ws://"+addr+"/ws/", nil)
	send(t, late, fmt.Sprintf(`{"type":"subscribe","topic":"room","epoch":%q,"offset":1}`, first.Epoch))
	if r := readReply(t, late); r.Type != "subscribed" || r.Recovery != "failed" || r.Epoch == first.Epoch {
		t.Fatalf("recovery from before the first connection: %+v, want failed with a new epoch", r)
	}
}

// TestClusterRecoveryAfterLastSubscriberLeft: the only subscriber of a topic on
// instance B leaves, instance A publishes, and the client comes back to B with its
// position: it recovers A's messages. Before, B dropped its NATS subscription with
// its last subscriber while keeping the topic's history and epoch, so A's messages
// never reached B and the recovery said "ok" with nothing missed (a per-user topic
// lost every message sent while its user was away).
func TestClusterRecoveryAfterLastSubscriberLeft(t *testing.T) {
	b, c, at, pos := subscribedAcross(t, "user.7")
	c.Close()
	waitCount(t, b.hd.Hub(), "user.7", 0)

	for _, m := range []string{`"away-1"`, `"away-2"`} {
		at.Publish(websocket.TextMessage, []byte(m), nil)
	}
	// The messages cross NATS to B (they do not when B has unsubscribed, so this
	// wait may run out; the recovery below then tells).
	bt := b.hd.Hub().Lookup("user.7")
	deadline := time.Now().Add(3 * time.Second)
	for _, next := bt.Epoch(); next < pos.Offset+3 && time.Now().Before(deadline); _, next = bt.Epoch() {
		time.Sleep(5 * time.Millisecond)
	}
	back := wsDial(t, "ws://"+b.addr+"/ws/", nil)
	send(t, back, fmt.Sprintf(`{"type":"subscribe","topic":"user.7","epoch":%q,"offset":%d}`, pos.Epoch, pos.Offset))
	r := readReply(t, back)
	if r.Type != "subscribed" || r.Recovery != "ok" || r.Missed != 2 {
		t.Fatalf("back on B: %+v, want recovery ok with the 2 messages A published meanwhile", r)
	}
	for _, want := range []string{`"away-1"`, `"away-2"`} {
		if m := readReply(t, back); m.Type != "message" || string(m.Data) != want {
			t.Fatalf("recovered %+v, want %s", m, want)
		}
	}
}

// TestClusterSnapshotRestartIsAGap: instance B restarts with a snapshot (history.file)
// while instance A publishes. B's restored topics missed A's messages of that time,
// so the restart counts as a gap: a position from before it fails to recover (new
// epoch) instead of recovering "ok" without them, and B hears A's messages of the
// restored topic again. Before, the restored epochs went on and the recovery said
// "ok" with nothing missed.
func TestClusterSnapshotRestartIsAGap(t *testing.T) {
	b, _, at, pos := subscribedAcross(t, "room")

	// B stops: snapshot, NATS connection closed. A publishes meanwhile.
	file := t.TempDir() + "/hub.snap"
	if _, err := b.hd.Hub().SaveSnapshot(file); err != nil {
		t.Fatal(err)
	}
	b.bridge.Close()
	at.Publish(websocket.TextMessage, []byte(`"while B was away"`), nil)

	// B starts again from the snapshot.
	h := New(Options{Loops: 2, HistorySize: 100})
	if n, err := h.LoadSnapshot(file); err != nil || n != 1 {
		t.Fatalf("snapshot: %d topics, %v", n, err)
	}
	b2 := startInstanceOf(t, h)
	br := b2.bridge
	back := wsDial(t, "ws://"+b2.addr+"/ws/", nil)
	send(t, back, fmt.Sprintf(`{"type":"subscribe","topic":"room","epoch":%q,"offset":%d}`, pos.Epoch, pos.Offset))
	if r := readReply(t, back); r.Type != "subscribed" || r.Recovery != "failed" || r.Epoch == pos.Epoch {
		t.Fatalf("recovery across B's restart: %+v, want failed with a new epoch", r)
	}
	if g := br.Stats().Gaps; g != 1 {
		t.Fatalf("gaps %d, want 1", g)
	}
	waitNATSSub(t, br, "room")
	at.Publish(websocket.TextMessage, []byte(`"after"`), nil)
	if m := readReply(t, back); m.Type != "message" || string(m.Data) != `"after"` {
		t.Fatalf("A's message after B's restart: %+v", m)
	}
}

// subscribedAcross starts NATS and two instances A and B, subscribes a protocol
// client of B to topic (B's NATS subscription in place), publishes one message on A
// and returns B, the client, A's topic (held until the test ends, for publishing on
// A) and the delivery of that message on B: the client's position.
func subscribedAcross(t *testing.T, topic string) (b *instance, c *websocket.Conn, at *Topic, pos answer) {
	t.Helper()
	startNATS(t)
	a := startInstance(t)
	b = startInstance(t)
	c = wsDial(t, "ws://"+b.addr+"/ws/", nil)
	send(t, c, `{"type":"subscribe","topic":"`+topic+`"}`)
	if r := readReply(t, c); r.Type != "subscribed" {
		t.Fatalf("subscribe: %+v", r)
	}
	waitNATSSub(t, b.bridge, topic)
	at, err := a.hd.Hub().Acquire(topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.hd.Hub().Release(at) })
	at.Publish(websocket.TextMessage, []byte(`"first"`), nil)
	if pos = readReply(t, c); pos.Type != "message" {
		t.Fatalf("A's first message on B: %+v", pos)
	}
	return b, c, at, pos
}

// waitNATSSub waits until b holds its NATS subscription of topic and the NATS server
// has it (a flush is a round trip after the SUB).
func waitNATSSub(t *testing.T, b *NATSBridge, topic string) {
	t.Helper()
	testkit.WaitFor(t, "the NATS subscription of "+topic, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.subs[topic] != nil
	})
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}
