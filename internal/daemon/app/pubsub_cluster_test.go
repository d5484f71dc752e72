package app

import (
	"bufio"
	"context"
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
	// The NATS subscriptions are made asynchronously, so the first messages may reach
	// fewer instances; the rest must arrive once each, in each publisher's order.
	got := make([]int, 3)
	for seq := 0; seq < 50; seq++ {
		testkit.Curl(t, "-s", "-H", "Authorization: Bearer tok", "--data-binary", fmt.Sprintf(`{"n":%d}`, seq),
			"-H", "Content-Type: application/json", "http://"+addrs[seq%3]+"/hub/publish/news")
	}
	// Message n was published on instance n%3: each instance is one publisher, whose
	// order must hold; messages of different publishers may interleave either way.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		last := []int{-3, -2, -1}
		for last[0] < 48 || last[1] < 49 || last[2] < 47 {
			var m struct {
				Type string
				Data struct{ N int }
			}
			if err := c.ReadJSON(&m); err != nil {
				t.Fatalf("instance %d after %d messages: %v", i, got[i], err)
			}
			if p := m.Data.N % 3; m.Data.N <= last[p] {
				t.Fatalf("instance %d: message %d after %d of the same publisher (duplicate or reordered)", i, m.Data.N, last[p])
			} else {
				last[p] = m.Data.N
			}
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
