//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// pubsubReloadConfig is a protocol-mode hub with history beside a respond route whose
// body changes between versions; historySize is one of the hub's settings.
func pubsubReloadConfig(body string, historySize int) string {
	return fmt.Sprintf(`workers: 2
log: { format: json }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /hub/ }
        pubsub: { history: { size: %d }, publish_token: tok }
      - respond: { body: %q }
`, historySize, body)
}

// hubPublish publishes body on topic over HTTP and returns the offset gale assigned.
func hubPublish(t *testing.T, addr, topic, body string) uint64 {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/hub/publish/"+topic, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct{ Offset uint64 }
	if resp.StatusCode != 200 || json.Unmarshal(raw, &r) != nil {
		t.Fatalf("publish %q: %d %s", body, resp.StatusCode, raw)
	}
	return r.Offset
}

// hubReply is the union of the protocol's replies and deliveries the test reads.
type hubReply struct {
	Type, Topic, Epoch, Recovery, Data string
	Offset                             uint64
	Missed                             int
}

// hubSubscribe opens a protocol connection and subscribes to topic, recovering from
// (epoch, offset) when epoch is set; it returns the connection and the reply.
func hubSubscribe(t *testing.T, addr, topic, epoch string, offset uint64) (*websocket.Conn, hubReply) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("ws://"+addr+"/hub/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cmd := fmt.Sprintf(`{"type":"subscribe","id":1,"topic":%q}`, topic)
	if epoch != "" {
		cmd = fmt.Sprintf(`{"type":"subscribe","id":1,"topic":%q,"epoch":%q,"offset":%d}`, topic, epoch, offset)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
		t.Fatal(err)
	}
	return c, hubRead(t, c)
}

func hubRead(t *testing.T, c *websocket.Conn) hubReply {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var r hubReply
	if err := c.ReadJSON(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPubSubOffsetsSurviveSIGHUP runs the gale binary and reloads it with SIGHUP, as an
// operator does: a protocol client's position (epoch, offset) taken before the reload
// recovers the messages published after it, and a subscriber connected across the reload
// keeps receiving in the same epoch. A reload that changes the hub's settings starts the
// hub afresh, and recovering from the old position then fails rather than replaying
// offsets of another epoch (docs/pubsub.md, "History and recovery").
func TestPubSubOffsetsSurviveSIGHUP(t *testing.T) {
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, pubsubReloadConfig("one", 100))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	addr := g.addr()

	if off := hubPublish(t, addr, "news", "m1"); off != 1 {
		t.Fatalf("first offset %d", off)
	}
	live, sub := hubSubscribe(t, addr, "news", "", 0)
	if sub.Type != "subscribed" || sub.Offset != 1 || sub.Epoch == "" {
		t.Fatalf("subscribed: %+v", sub)
	}

	writeConfig(t, cfgPath, pubsubReloadConfig("two", 100))
	g.signal(syscall.SIGHUP)
	g.waitLog("configuration reloaded", 1)
	if got := get(t, "http://"+addr+"/"); got != "two" {
		t.Fatalf("the reload was not applied: body %q", got)
	}
	if off := hubPublish(t, addr, "news", "m2"); off != 2 {
		t.Fatalf("offset after the reload %d, want 2 (the hub kept)", off)
	}
	if m := hubRead(t, live); m.Type != "message" || m.Data != "m2" || m.Offset != 2 || m.Epoch != sub.Epoch {
		t.Fatalf("subscriber kept across the reload got %+v, want m2 at offset 2 of epoch %s", m, sub.Epoch)
	}
	c, rec := hubSubscribe(t, addr, "news", sub.Epoch, 1)
	if rec.Recovery != "ok" || rec.Missed != 1 || rec.Epoch != sub.Epoch {
		t.Fatalf("recovery after SIGHUP: %+v", rec)
	}
	if m := hubRead(t, c); m.Type != "message" || m.Data != "m2" || m.Offset != 2 {
		t.Fatalf("replayed after SIGHUP: %+v", m)
	}

	// A changed history size is a new hub: new epoch, recovery from the old one fails.
	writeConfig(t, cfgPath, pubsubReloadConfig("three", 50))
	g.signal(syscall.SIGHUP)
	g.waitLog("configuration reloaded", 2)
	hubPublish(t, addr, "news", "m3")
	_, rec = hubSubscribe(t, addr, "news", sub.Epoch, 2)
	if rec.Recovery != "failed" || rec.Epoch == sub.Epoch {
		t.Fatalf("recovery across a hub whose settings changed: %+v, want failed with a new epoch", rec)
	}

	g.signal(syscall.SIGTERM)
	if code := g.wait(30 * time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM:\n%s", code, g.log())
	}
}
