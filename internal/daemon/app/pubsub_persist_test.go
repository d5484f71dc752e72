package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gorilla/websocket"
)

// TestPubSubSnapshotAcrossRestart stops a gale App and starts a new one (new hubs,
// new listener) on the same history.file: a client that kept its position recovers
// the messages it missed before the restart and then gets live ones with the
// offsets continuing; the file is consumed at start, so a third start after a crash
// (no snapshot written) begins a new epoch and recovery fails.
func TestPubSubSnapshotAcrossRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hub.snap")
	conf := fmt.Sprintf(`
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /hub/ }
        pubsub: { history: { size: 100, file: %q }, publish_token: tok }
`, file)
	publish := func(addr, body string) {
		t.Helper()
		head, _ := testkit.Curl(t, "-s", "-i", "-H", "Authorization: Bearer tok", "--data-binary", body, "http://"+addr+"/hub/publish/news")
		if testkit.StatusOf(head) != "200" {
			t.Fatalf("publish %q: %s", body, head)
		}
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	subscribe := func(addr, cmd string) *websocket.Conn {
		t.Helper()
		c, _, err := d.Dial("ws://"+addr+"/hub/", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	type reply struct {
		Type, Recovery, Data, Epoch string
		Missed                      int
		Offset                      uint64
	}
	read := func(c *websocket.Conn) reply {
		t.Helper()
		var r reply
		if err := c.ReadJSON(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}

	a1, addr1 := runApp(t, conf)
	publish(addr1, "one")
	c := subscribe(addr1, `{"type":"subscribe","id":1,"topic":"news"}`)
	pos := read(c)
	if pos.Offset != 1 {
		t.Fatalf("subscribed: %+v", pos)
	}
	publish(addr1, "two")
	publish(addr1, "three")
	c.Close() // a graceful stop waits for open WebSockets
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no snapshot after shutdown: %v", err)
	}

	a2, addr2 := runApp(t, conf)
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("snapshot still there after it was restored: %v", err)
	}
	c2 := subscribe(addr2, fmt.Sprintf(`{"type":"subscribe","id":1,"topic":"news","epoch":%q,"offset":1}`, pos.Epoch))
	if r := read(c2); r.Recovery != "ok" || r.Missed != 2 || r.Epoch != pos.Epoch || r.Offset != 3 {
		t.Fatalf("recovery after restart: %+v", r)
	}
	for i, want := range []string{"two", "three"} {
		if r := read(c2); r.Type != "message" || r.Data != want || r.Offset != uint64(i+2) {
			t.Fatalf("replayed %d: %+v", i, r)
		}
	}
	publish(addr2, "four")
	if r := read(c2); r.Data != "four" || r.Offset != 4 || r.Epoch != pos.Epoch {
		t.Fatalf("live after restart: %+v", r)
	}

	// A crash: a2 is never shut down before a3 starts, so there is no snapshot and the
	// position of the previous run must not be honoured.
	_, addr3 := startApp(t, conf)
	c3 := subscribe(addr3, fmt.Sprintf(`{"type":"subscribe","id":1,"topic":"news","epoch":%q,"offset":4}`, pos.Epoch))
	if r := read(c3); r.Recovery != "failed" || r.Epoch == pos.Epoch {
		t.Fatalf("recovery without a snapshot: %+v", r)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	a2.Shutdown(ctx2)
}
