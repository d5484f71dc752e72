package wsserver

import (
	"sync/atomic"
	"testing"

	"github.com/gale-server/gale/websocket"
)

// broadcaster sends one shared frame to every open connection when any of them sends
// "go"; compressed connections get it too, uncompressed.
type broadcaster struct {
	*recorder
	conns []*Conn // owned by the one loop
	freed atomic.Int32
}

func (b *broadcaster) OnOpen(c *Conn) { b.conns = append(b.conns, c); b.recorder.OnOpen(c) }
func (b *broadcaster) OnMessage(c *Conn, op websocket.Opcode, msg []byte) {
	s := NewShared(websocket.OpText, []byte("to everyone"), func() { b.freed.Add(1) })
	for _, o := range b.conns {
		if err := o.SendShared(s); err != nil {
			panic(err)
		}
	}
	s.Release()
}

// TestSendShared queues one frame to several connections, compressed ones included,
// and the buffer is freed once every connection has sent it.
func TestSendShared(t *testing.T) {
	b := &broadcaster{recorder: newRecorder()}
	_, addr := startWS(t, b, Options{Compression: true})
	clients := []*wsClient{dial(t, addr), dial(t, addr, "Sec-WebSocket-Extensions: permessage-deflate"), dial(t, addr)}
	for range clients {
		<-b.opened
	}
	clients[0].send(frame(true, websocket.OpText, 0, []byte("go")))
	for _, c := range clients {
		c.expectEcho(websocket.OpText, []byte("to everyone"))
	}
	waitFor(t, func() bool { return b.freed.Load() == 1 })
}

// drainer floods its connection past the engine's mark, then waits for OnDrain.
type drainer struct {
	*recorder
	drained chan int
}

func (d *drainer) OnMessage(c *Conn, _ websocket.Opcode, _ []byte) {
	big := make([]byte, 64<<10)
	for c.Buffered() < 512<<10 {
		if err := c.SendBinary(big); err != nil {
			panic(err)
		}
	}
	c.WantDrain()
}
func (d *drainer) OnDrain(c *Conn) { d.drained <- c.Buffered() }

// TestDrainHandler calls OnDrain once the client has read the queued output down to
// the low-water mark.
func TestDrainHandler(t *testing.T) {
	d := &drainer{recorder: newRecorder(), drained: make(chan int, 1)}
	_, addr := startWS(t, d, Options{HighWater: 4 << 20})
	c := dial(t, addr)
	c.send(frame(true, websocket.OpText, 0, []byte("flood")))
	for {
		c.message()
		select {
		case n := <-d.drained:
			if n > 64<<10 {
				t.Fatalf("OnDrain with %d bytes queued, above the engine's low-water mark", n)
			}
			return
		default:
		}
	}
}

var _ DrainHandler = (*drainer)(nil)
