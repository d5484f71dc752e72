package app

import (
	"fmt"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gorilla/websocket"
)

const wsConf = `
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /ws/echo }
        websocket: { echo: true, compression: %v }
      - respond: { body: %s }
`

// TestWebSocketRouteEcho serves the websocket action to gorilla/websocket's client,
// with and without permessage-deflate.
func TestWebSocketRouteEcho(t *testing.T) {
	for _, compress := range []bool{false, true} {
		_, addr := startApp(t, fmt.Sprintf(wsConf, compress, "one"))
		d := websocket.Dialer{EnableCompression: compress, HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial("ws://"+addr+"/ws/echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("Sec-WebSocket-Extensions") != ""; got != compress {
			t.Fatalf("compression negotiated %v, want %v", got, compress)
		}
		msg := []byte("hello hello hello hello hello hello hello hello hello hello hello hello")
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		op, got, err := c.ReadMessage()
		if err != nil || op != websocket.TextMessage || string(got) != string(msg) {
			t.Fatalf("echo: %d %q %v", op, got, err)
		}
		c.Close()
	}
}

// TestReloadKeepsWebSockets opens 1,000 WebSockets, reloads the configuration 20
// times, and checks that every one still echoes and none was closed.
func TestReloadKeepsWebSockets(t *testing.T) {
	a, addr := startApp(t, fmt.Sprintf(wsConf, false, "one"))
	const n = 1000
	conns := make([]*websocket.Conn, 0, n)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	for i := 0; i < n; i++ {
		c, _, err := d.Dial("ws://"+addr+"/ws/echo", nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < 20; i++ {
		next, err := config.Parse("next.yaml", []byte(fmt.Sprintf(wsConf, i%2 == 0, fmt.Sprint(i))))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Reload(next); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	for i, c := range conns {
		msg := fmt.Appendf(nil, "still open %d", i)
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatalf("conn %d: write after reloads: %v", i, err)
		}
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, got, err := c.ReadMessage()
		if err != nil || string(got) != fmt.Sprintf("still open %d", i) {
			t.Fatalf("conn %d after 20 reloads: %q %v", i, got, err)
		}
	}
}
