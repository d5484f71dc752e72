package pubsub

import (
	"fmt"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gorilla/websocket"
)

// TestBurstReachesOtherLoopOnce sends 2,000 messages in one write from a path-mode
// client: the loop that reads them posts to the other loop once, at the end of its
// iteration, so the other loop takes all 2,000 in one drain (not one at the first
// message and the rest later), and every subscriber gets them in order. (The portable
// engine may read the burst over a few iterations: a drain each.)
func TestBurstReachesOtherLoopOnce(t *testing.T) {
	hd, addr := startHub(t, Options{}, HandlerOptions{Mode: PathMode})
	h := hd.Hub()
	const n = 16
	cs := make([]*websocket.Conn, n)
	for i := range cs {
		cs[i] = wsDial(t, "ws://"+addr+"/ws/burst", nil)
	}
	waitCount(t, h, "burst", n)
	tp := h.Lookup("burst")
	if tp.perLoop[0].Load() == 0 || tp.perLoop[1].Load() == 0 {
		t.Skipf("subscribers on one loop only (%d, %d)", tp.perLoop[0].Load(), tp.perLoop[1].Load())
	}
	// The publisher's loop is the one whose drains do not move: find it afterwards.
	before := [2]uint64{h.loops[0].drains.Load(), h.loops[1].drains.Load()}
	const msgs = 2000
	var burst []byte
	for k := 0; k < msgs; k++ {
		p := fmt.Appendf(nil, "b%04d", k)
		// A masked client frame with the all-zero key: the payload goes as it is.
		burst = append(burst, 0x81, 0x80|byte(len(p)), 0, 0, 0, 0)
		burst = append(burst, p...)
	}
	if _, err := cs[0].NetConn().Write(burst); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		cs[i].SetReadDeadline(time.Now().Add(5 * time.Second))
		for k := 0; k < msgs; k++ {
			_, p, err := cs[i].ReadMessage()
			if err != nil {
				t.Fatalf("client %d after %d: %v", i, k, err)
			}
			if want := fmt.Sprintf("b%04d", k); string(p) != want {
				t.Fatalf("client %d: got %q, want %q", i, p, want)
			}
		}
	}
	testkit.WaitFor(t, "the deliveries counted", func() bool { return h.Stats().Delivered >= msgs*(n-1) })
	d := [2]uint64{h.loops[0].drains.Load() - before[0], h.loops[1].drains.Load() - before[1]}
	// The publisher's loop drains its own subscribers once per message; the other once
	// per iteration in which the publisher's loop read part of the burst.
	other, want := min(d[0], d[1]), uint64(1)
	if !burstOneRead {
		want = 4
	}
	if max(d[0], d[1]) != msgs || other == 0 || other > want {
		t.Fatalf("drains per loop %v, want at most %d on the other loop and %d on the publisher's", d, want, msgs)
	}
}
