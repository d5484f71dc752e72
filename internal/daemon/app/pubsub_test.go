package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gorilla/websocket"
)

const pubsubConf = `
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /ws/fanout/ }
        pubsub: { topic: path }
      - match: { path: /hub/ }
        pubsub: { history: { size: 100 }, publish_token: tok }
      - respond: { body: %s }
`

// TestPubSubRoute serves both pubsub modes from the configuration: path-mode clients
// relay to each other, and a protocol client's position (epoch and offset) stays
// valid across reloads, so it recovers what it missed.
func TestPubSubRoute(t *testing.T) {
	a, addr := startApp(t, fmt.Sprintf(pubsubConf, "one"))
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	p1, _, err := d.Dial("ws://"+addr+"/ws/fanout/room", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	p2, _, err := d.Dial("ws://"+addr+"/ws/fanout/room", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	// Subscription is registered right after the handshake; retry until p2 hears.
	got := make(chan string, 1)
	go func() {
		p2.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, m, err := p2.ReadMessage()
		if err == nil {
			got <- string(m)
		}
		close(got)
	}()
	if err := p1.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "hi" {
		t.Fatalf("path mode relay: %q", m)
	}

	// Publish two messages over HTTP, remember the position after the first.
	_, body := testkit.Curl(t, "-s", "-H", "Authorization: Bearer tok", "--data-binary", "one", "http://"+addr+"/hub/publish/news")
	var pub struct{ Offset uint64 }
	if err := json.Unmarshal([]byte(body), &pub); err != nil || pub.Offset != 1 {
		t.Fatalf("publish: %q %v", body, err)
	}
	head, _ := testkit.Curl(t, "-s", "-i", "--data-binary", "x", "http://"+addr+"/hub/publish/news")
	if testkit.StatusOf(head) != "401" {
		t.Fatalf("publish without token: %s", head)
	}
	c, _, err := d.Dial("ws://"+addr+"/hub/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","id":1,"topic":"news"}`))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var sub struct {
		Epoch  string
		Offset uint64
	}
	if err := c.ReadJSON(&sub); err != nil || sub.Offset != 1 {
		t.Fatalf("subscribed: %+v %v", sub, err)
	}
	for i := 0; i < 3; i++ {
		next, err := config.Parse("next.yaml", []byte(fmt.Sprintf(pubsubConf, fmt.Sprint(i))))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Reload(next); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Curl(t, "-s", "-H", "Authorization: Bearer tok", "--data-binary", "two", "http://"+addr+"/hub/publish/news")
	c2, _, err := d.Dial("ws://"+addr+"/hub/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"subscribe","id":1,"topic":"news","epoch":%q,"offset":1}`, sub.Epoch))
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	var rec struct {
		Type, Recovery, Data string
		Missed               int
		Offset               uint64
	}
	if err := c2.ReadJSON(&rec); err != nil || rec.Recovery != "ok" || rec.Missed != 1 {
		t.Fatalf("recovery after reloads: %+v %v", rec, err)
	}
	if err := c2.ReadJSON(&rec); err != nil || rec.Type != "message" || rec.Data != "two" || rec.Offset != 2 {
		t.Fatalf("replayed: %+v %v", rec, err)
	}
}

// TestPubSubMetrics scrapes the presence gauges and message counters of a hub.
func TestPubSubMetrics(t *testing.T) {
	a, addr := startApp(t, `
workers: 2
admin: { listen: 127.0.0.1:0 }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /ws/fanout/ }
        pubsub: { topic: path }
`)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	for i := 0; i < 3; i++ {
		c, _, err := d.Dial("ws://"+addr+"/ws/fanout/room", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i == 2 {
			c.WriteMessage(websocket.TextMessage, []byte("hello"))
		}
	}
	c := &http.Client{Timeout: 5 * time.Second}
	testkit.WaitFor(t, "two deliveries counted", func() bool {
		return metricValue(t, scrape(t, c, a.AdminAddr()), `gale_pubsub_messages_total{event="delivered",hub="/ws/fanout/"}`) == 2
	})
	text := scrape(t, c, a.AdminAddr())
	for series, want := range map[string]float64{
		`gale_pubsub_subscribers{hub="/ws/fanout/"}`:                      3,
		`gale_pubsub_topics{hub="/ws/fanout/"}`:                           1,
		`gale_pubsub_messages_total{event="published",hub="/ws/fanout/"}`: 1,
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}
