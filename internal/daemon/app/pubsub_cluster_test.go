package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gorilla/websocket"
)

// clusterNATSPort is from the pubsub helper's port range.
const clusterNATSPort = 20791

const clusterConf = `
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /hub/ }
        pubsub: { publish_token: tok, cluster: { nats: "nats://127.0.0.1:%d", subject: gale.apptest } }
`

// TestPubSubClusterFromConfig runs three gale instances built from the configuration
// with cluster.nats pointing at a real nats-server: a message published over HTTP on
// one instance reaches a subscriber on each of the three exactly once.
func TestPubSubClusterFromConfig(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not installed (apt-get install -y nats-server)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-a", "127.0.0.1", "-p", fmt.Sprint(clusterNATSPort))
	errs, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(errs)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Server is ready") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("nats-server did not start")
	}
	var addrs []string
	var conns []*websocket.Conn
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	for i := 0; i < 3; i++ {
		_, addr := startApp(t, fmt.Sprintf(clusterConf, clusterNATSPort))
		addrs = append(addrs, addr)
		c, _, err := d.Dial("ws://"+addr+"/hub/", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","topic":"news"}`))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var r struct{ Type string }
		if err := c.ReadJSON(&r); err != nil || r.Type != "subscribed" {
			t.Fatalf("subscribe on instance %d: %+v %v", i, r, err)
		}
		conns = append(conns, c)
	}
	// The NATS subscriptions are made asynchronously; publish numbered messages until
	// every instance has one, then check that the rest arrive once each, in order.
	got := make([]int, 3)
	for seq := 0; seq < 50; seq++ {
		testkit.Curl(t, "-s", "-H", "Authorization: Bearer tok", "--data-binary", fmt.Sprintf(`{"n":%d}`, seq),
			"-H", "Content-Type: application/json", "http://"+addrs[seq%3]+"/hub/publish/news")
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		last := -1
		for last < 49 {
			var m struct {
				Type string
				Data json.RawMessage
			}
			if err := c.ReadJSON(&m); err != nil {
				t.Fatalf("instance %d after %d messages: %v", i, got[i], err)
			}
			var v struct{ N int }
			if err := json.Unmarshal(m.Data, &v); err != nil {
				// A JSON body published over HTTP arrives as a string of it.
				var s string
				_ = json.Unmarshal(m.Data, &s)
				_ = json.Unmarshal([]byte(s), &v)
			}
			if v.N <= last {
				t.Fatalf("instance %d: message %d after %d (duplicate or reordered)", i, v.N, last)
			}
			last = v.N
			got[i]++
		}
	}
	t.Logf("messages received per instance (of 50; early ones may precede the NATS subscriptions): %v", got)
	for i, n := range got {
		if n < 40 {
			t.Fatalf("instance %d received only %d of 50", i, n)
		}
	}
}
