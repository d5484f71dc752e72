package wsserver

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/websocket"
)

// TestHeavyAutobahn9Limits echoes the large messages of Autobahn's limits cases (9.1,
// 9.2: 64 KiB to 16 MiB, text and binary, one frame) and of its fragmented cases (9.3,
// 9.4: 4 MiB in fragments of 64 bytes to 4 MiB), with a 16 MiB limit. Without
// GALE_HEAVY=1 it stops at 1 MiB.
func TestHeavyAutobahn9Limits(t *testing.T) {
	top := 16 << 20
	if os.Getenv("GALE_HEAVY") != "1" {
		top = 1 << 20
		t.Logf("reduced size; GALE_HEAVY=1 runs the full size")
	}
	_, addr := startWS(t, Echo{}, Options{MaxMessageBytes: 16 << 20})
	c := dial(t, addr)
	c.c.SetDeadline(time.Now().Add(5 * time.Minute))
	for n := 64 << 10; n <= top; n *= 4 {
		for _, op := range []websocket.Opcode{websocket.OpText, websocket.OpBinary} {
			p := bytes.Repeat([]byte{'*'}, n)
			go c.c.Write(frame(true, op, 0, p))
			c.expectEcho(op, p)
		}
	}
	msg := bytes.Repeat([]byte("a"), min(top, 4<<20))
	for frag := 64; frag <= len(msg); frag *= 16 {
		var all []byte
		for i := 0; i < len(msg); i += frag {
			op := websocket.OpContinuation
			if i == 0 {
				op = websocket.OpBinary
			}
			all = append(all, frame(i+frag >= len(msg), op, 0, msg[i:min(i+frag, len(msg))])...)
		}
		go c.c.Write(all)
		c.expectEcho(websocket.OpBinary, msg)
	}
}

// TestShutdownGoesAway closes open WebSockets with 1001 when the server shuts down.
func TestShutdownGoesAway(t *testing.T) {
	r := newRecorder()
	ws, err := New(r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Handler: ws, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	c := dial(t, srv.Addr())
	<-r.opened
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	g, err := c.read()
	if err != nil || g.op != websocket.OpClose || g.code != websocket.CloseGoingAway {
		t.Fatalf("got %+v %v, want close 1001", g, err)
	}
	c.send(frame(true, websocket.OpClose, 0, []byte{0x03, 0xe9}))
	c.expectEOF()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if e := r.waitClose(t); e.code != websocket.CloseGoingAway || e.err != nil {
		t.Fatalf("OnClose(%d, %v), want 1001, nil", e.code, e.err)
	}
}
