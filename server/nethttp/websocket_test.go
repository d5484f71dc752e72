package nethttp_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/nethttp"
	"github.com/gale-server/gale/server/servertest"
)

// startAdapted serves h through the net/http adapter on a one-loop server.
func startAdapted(t *testing.T, h http.Handler) string {
	t.Helper()
	p := server.NewPool(4, 16)
	return servertest.Start(t, nethttp.Adapt(h, p), nil).Addr()
}

// TestGorillaUpgraderThroughHijack runs an unmodified gorilla/websocket Upgrader
// behind the adapter (it hijacks the connection) and talks to it with gorilla's
// client, with and without compression.
func TestGorillaUpgraderThroughHijack(t *testing.T) {
	up := websocket.Upgrader{EnableCompression: true}
	addr := startAdapted(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			op, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(op, append([]byte("gorilla:"), msg...)); err != nil {
				return
			}
		}
	}))
	for _, compress := range []bool{false, true} {
		d := websocket.Dialer{EnableCompression: compress, HandshakeTimeout: 5 * time.Second}
		c, _, err := d.Dial("ws://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 1000, 100000} {
			msg := []byte(strings.Repeat("m", n))
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, got, err := c.ReadMessage()
			if err != nil || string(got) != "gorilla:"+string(msg) {
				t.Fatalf("echo of %d bytes (compression %v): %d bytes, %v", n, compress, len(got), err)
			}
		}
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		c.Close()
	}
}

// TestCoderAcceptThroughHijack runs coder/websocket's Accept behind the adapter and
// talks to it with coder's client.
func TestCoderAcceptThroughHijack(t *testing.T) {
	addr := startAdapted(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := coder.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		ctx := context.Background()
		for {
			op, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, op, append([]byte("coder:"), msg...)); err != nil {
				return
			}
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := coder.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, n := range []int{1, 5000, 200000} {
		msg := strings.Repeat("c", n)
		c.SetReadLimit(1 << 20)
		if err := c.Write(ctx, coder.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "coder:"+msg {
			t.Fatalf("echo of %d bytes: %d bytes, %v", n, len(got), err)
		}
	}
	if err := c.Close(coder.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
}
