package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const wsOptionsConf = `
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /default }
        websocket: { echo: true }
      - match: { path: /listed }
        websocket: { echo: true, allowed_origins: [https://app.example] }
      - match: { path: /idle }
        websocket: { echo: true, ping_interval: 0s, idle_timeout: 300ms }
      - match: { path: /flood }
        websocket: { echo: true, high_water: 1KiB, overflow_code: 1013, close_timeout: 10s }
`

// TestWebSocketRouteOptions checks that the websocket action's options reach the
// server: the default Origin policy (same host only: cross-site hijacking is refused
// with 403), allowed_origins, idle_timeout (a silent client is closed with 1001), and the
// output policy (a client that does not read is closed with overflow_code 1013).
func TestWebSocketRouteOptions(t *testing.T) {
	_, addr := startApp(t, wsOptionsConf)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	for _, tc := range []struct {
		path, origin string
		status       int
	}{
		{"/default", "", 101},
		{"/default", "http://" + addr, 101},
		{"/default", "http://evil.example", 403},
		{"/default", "https://" + strings.Replace(addr, "127.0.0.1", "evil.example", 1), 403},
		{"/listed", "https://app.example", 101},
		{"/listed", "http://" + addr, 403},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, resp, err := d.Dial("ws://"+addr+tc.path, h)
		if resp == nil {
			t.Fatalf("%s with Origin %q: %v", tc.path, tc.origin, err)
		}
		if resp.StatusCode != tc.status {
			t.Errorf("%s with Origin %q: status %d, want %d", tc.path, tc.origin, resp.StatusCode, tc.status)
		}
		if c != nil {
			c.Close()
		}
	}

	// idle_timeout: nothing sent for 300 ms, no pings (ping_interval 0) → close 1001.
	c, _, err := d.Dial("ws://"+addr+"/idle", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("silent client: %v, want close 1001", err)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("closed for silence after %v, before idle_timeout", el)
	}
	c.Close()

	// high_water 1 KiB, overflow_code 1013: a client that sends without reading fills
	// the server's output with echoes and is closed with 1013 once it reads again. Its
	// receive buffer is fixed at 64 KiB (no autotuning, which may grow to tcp_rmem's
	// maximum), so the kernel holds far less than the 16 MiB of echoes.
	small := d
	small.NetDialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
			}); err != nil {
				return err
			}
			return serr
		}}
		return nd.DialContext(ctx, network, address)
	}
	c, _, err = small.Dial("ws://"+addr+"/flood", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 64<<10)
	sent := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		for range 256 { // 16 MiB: more than the socket buffers on both ends hold
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	// Read nothing until the writer is done: it ends when every message is sent (the
	// server reads on, discarding what follows its close frame) or at its write
	// deadline. Reading earlier could keep the server's output under its mark on a slow
	// machine.
	werr := <-sent
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	echoes := 0
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			echoes++
			continue
		}
		if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater {
			t.Fatalf("after %d echoes: %v, want close 1013", echoes, err)
		}
		break
	}
	t.Logf("%d echoes before the close 1013; writer: %v", echoes, werr)
}
