package pubsub

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	gw "github.com/gale-server/gale/websocket"
)

// slowRawUpgrade opens a path-mode WebSocket with a hand-written handshake on a
// socket with a 4 KiB receive buffer, so that a client that does not read backs up
// the server quickly.
func slowRawUpgrade(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c := dialSmallBuffer(t, addr)
	var k [16]byte
	_, _ = rand.Read(k[:])
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(k[:]) + "\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	var head []byte
	one := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := c.Read(one); err != nil {
			t.Fatalf("handshake: %v", err)
		}
		head = append(head, one[0])
	}
	if !strings.HasPrefix(string(head), "HTTP/1.1 101 ") {
		t.Fatalf("handshake: %q", head)
	}
	return c
}

// TestNoMessageAfterCloseFrame lets a path-mode subscriber fall behind until its
// backlog holds messages, then ends the WebSocket from the client's side, with a close
// frame or with a protocol violation (an unmasked frame, 1002). The server's close
// frame must be the last frame it sends (RFC 6455 §5.5.1): the waiting messages, and
// those published afterwards, are dropped rather than sent after it. Before, the
// backlog drained onto the wire behind the close frame.
func TestNoMessageAfterCloseFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  []byte
		code uint16
	}{
		{"close frame", gw.AppendClose(nil, 1000, "", &[4]byte{1, 2, 3, 4}), 1000},
		{"protocol error", gw.AppendFrame(nil, true, gw.OpText, false, []byte("unmasked"), nil), 1002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hd, addr := startHub(t, Options{Queue: 8, SocketBytes: 4 << 10}, HandlerOptions{Mode: PathMode})
			c := slowRawUpgrade(t, addr, "/ws/room")
			waitCount(t, hd.Hub(), "room", 1)
			topic := hd.Hub().Lookup("room")
			big := make([]byte, 8<<10)
			for i := 0; hd.Hub().Stats().Dropped == 0; i++ {
				if i == 5000 {
					t.Fatal("the subscriber's backlog never filled")
				}
				topic.Publish(gw.OpBinary, big, nil)
			}
			// The backlog is full (the oldest were dropped); now the client ends it.
			if _, err := c.Write(tc.end); err != nil {
				t.Fatal(err)
			}
			for range 50 {
				topic.Publish(gw.OpBinary, big, nil)
			}
			// Read every frame up to the end of the stream.
			rd := gw.Reader{Role: gw.RoleClient, MaxMessageBytes: -1}
			var buf []byte
			chunk := make([]byte, 64<<10)
			closed, after := false, 0
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			for {
				n, err := c.Read(chunk)
				buf = append(buf, chunk[:n]...)
				for {
					f, used, ferr := rd.ReadFrame(buf)
					if ferr == gw.ErrNeedMore {
						break
					}
					if ferr != nil {
						t.Fatalf("server sent a bad frame: %v", ferr)
					}
					switch {
					case f.Opcode == gw.OpClose:
						if closed {
							t.Fatal("two close frames")
						}
						closed = true
						if f.CloseCode != tc.code {
							t.Fatalf("close code %d, want %d", f.CloseCode, tc.code)
						}
					case closed:
						after++
					}
					buf = buf[used:]
				}
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
						t.Fatalf("reading: %v", err)
					}
					break
				}
			}
			if !closed || after != 0 {
				t.Fatalf("close frame seen: %v; frames after it: %d, want none", closed, after)
			}
			c.Close()
			waitCount(t, hd.Hub(), "room", 0)
		})
	}
}
