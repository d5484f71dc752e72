package app

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gorilla/websocket"
)

func wsTLSYAML(f testcert.Files, compress bool) string {
	return fmt.Sprintf(`
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    tls:
      certificates: [{ cert: %s, key: %s }]
    routes:
      - match: { path: /ws/echo }
        websocket: { echo: true, compression: %v }
`, f.Cert, f.Key, compress)
}

// TestWebSocketOverTLS serves the websocket action on a tls: server to
// gorilla/websocket's wss:// client trusting a test CA, with and without
// permessage-deflate: small and 200 KB messages (many TLS records) echo, a ping is
// answered with its payload, and the close handshake completes with the client's code.
func TestWebSocketOverTLS(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.Issue("ws", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", compress), func(t *testing.T) {
			_, addr := startApp(t, wsTLSYAML(f, compress))
			d := websocket.Dialer{
				TLSClientConfig:   &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"},
				EnableCompression: compress,
				HandshakeTimeout:  5 * time.Second,
			}
			c, resp, err := d.Dial("wss://"+addr+"/ws/echo", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := resp.Header.Get("Sec-WebSocket-Extensions") != ""; got != compress {
				t.Fatalf("compression negotiated %v, want %v", got, compress)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			big := bytes.Repeat([]byte("wss over gale's TLS layer "), 200_000/26)
			for _, m := range []struct {
				op  int
				msg []byte
			}{
				{websocket.TextMessage, []byte("hello over TLS")},
				{websocket.BinaryMessage, big},
				{websocket.TextMessage, []byte("after the big one")},
			} {
				if err := c.WriteMessage(m.op, m.msg); err != nil {
					t.Fatal(err)
				}
				op, got, err := c.ReadMessage()
				if err != nil || op != m.op || !bytes.Equal(got, m.msg) {
					t.Fatalf("echo of %d bytes: op %d, %d bytes, %v", len(m.msg), op, len(got), err)
				}
			}
			pong := make(chan string, 1)
			c.SetPongHandler(func(p string) error { pong <- p; return nil })
			if err := c.WriteControl(websocket.PingMessage, []byte("tls-ping"), time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ReadMessage(); err != nil { // the pong handler runs while reading
				t.Fatal(err)
			}
			select {
			case p := <-pong:
				if p != "tls-ping" {
					t.Fatalf("pong payload %q", p)
				}
			default:
				t.Fatal("no pong before the echo that followed the ping")
			}
			msg := websocket.FormatCloseMessage(4000, "done")
			if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
			_, _, err = c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4000 {
				t.Fatalf("after the client's close: %v, want the server's close 4000", err)
			}
		})
	}
}
