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

// startNATSServer runs Debian's nats-server on 127.0.0.1:port until the test ends,
// and skips the test when it is not installed.
func startNATSServer(t *testing.T, port int) {
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
}

// subscribeNews opens a WebSocket to the protocol hub at url and subscribes it to the
// topic "news", failing the test unless the hub confirms.
func subscribeNews(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","topic":"news"}`))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var r struct{ Type string }
	if err := c.ReadJSON(&r); err != nil || r.Type != "subscribed" {
		t.Fatalf("subscribe on %s: %+v %v", url, r, err)
	}
	return c
}

// hubsApartConf has two hubs (/a/ and /b/) on one NATS server with the default subject.
const hubsApartConf = `
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /a/ }
        pubsub: { publish_token: tok, cluster: { nats: "nats://127.0.0.1:%[1]d" } }
      - match: { path: /b/ }
        pubsub: { publish_token: tok, cluster: { nats: "nats://127.0.0.1:%[1]d" } }
`

// hubsApartNATSPort is from the ws2 helper's port range.
const hubsApartNATSPort = 19231

// TestPubSubClusterKeepsHubsApart runs two instances, each with two hubs that share a
// NATS server and the default subject. A message published on hub /a/ of one instance
// reaches /a/'s subscriber on the other through NATS, but no subscriber of the same
// topic on hub /b/, on either instance: before, every hub bridged on the subject
// gale.pubsub.TOPIC, so /b/ received /a/'s messages (its NATS connection is not the
// publisher's, so no-echo did not stop them even on the same instance).
func TestPubSubClusterKeepsHubsApart(t *testing.T) {
	startNATSServer(t, hubsApartNATSPort)
	_, addr1 := startApp(t, fmt.Sprintf(hubsApartConf, hubsApartNATSPort))
	_, addr2 := startApp(t, fmt.Sprintf(hubsApartConf, hubsApartNATSPort))
	b1 := subscribeNews(t, "ws://"+addr1+"/b/")
	a2 := subscribeNews(t, "ws://"+addr2+"/a/")
	b2 := subscribeNews(t, "ws://"+addr2+"/b/")
	// The NATS subscriptions are made asynchronously: publish until /a/ on instance 2
	// has one message, which proves the bridge carries /a/ between the instances.
	a2.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make(chan error, 1)
	go func() {
		var m struct{ Type string }
		for m.Type != "message" {
			if err := a2.ReadJSON(&m); err != nil {
				got <- err
				return
			}
		}
		got <- nil
	}()
	deadline := time.Now().Add(10 * time.Second)
	for sent := false; !sent; {
		testkit.Curl(t, "-s", "-H", "Authorization: Bearer tok", "--data-binary", `{"hub":"a"}`,
			"-H", "Content-Type: application/json", "http://"+addr1+"/a/publish/news")
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("hub /a/ on instance 2: %v", err)
			}
			sent = true
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("hub /a/'s message never reached instance 2 through NATS")
			}
		}
	}
	// A message on /b/ itself, published after all of /a/'s: whatever /b/'s
	// subscribers read first must be it.
	testkit.Curl(t, "-s", "-H", "Authorization: Bearer tok", "--data-binary", `{"hub":"b"}`,
		"-H", "Content-Type: application/json", "http://"+addr1+"/b/publish/news")
	for i, c := range []*websocket.Conn{b1, b2} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m struct {
			Type string
			Data struct{ Hub string }
		}
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("hub /b/ on instance %d: %v", i+1, err)
		}
		if m.Type != "message" || m.Data.Hub != "b" {
			t.Fatalf("hub /b/ on instance %d got %+v first: another hub's message", i+1, m)
		}
	}
}

// TestPubSubClusterFromConfig runs three gale instances built from the configuration
// with cluster.nats pointing at a real nats-server: a message published over HTTP on
// one instance reaches a subscriber on each of the three exactly once.
func TestPubSubClusterFromConfig(t *testing.T) {
	startNATSServer(t, clusterNATSPort)
	var addrs []string
	var conns []*websocket.Conn
	for i := 0; i < 3; i++ {
		_, addr := startApp(t, fmt.Sprintf(clusterConf, clusterNATSPort))
		addrs = append(addrs, addr)
		conns = append(conns, subscribeNews(t, "ws://"+addr+"/hub/"))
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
