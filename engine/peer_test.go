package engine

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// closeRecorder is script with an OnClose that asks for the peer address only then,
// after the peer has reset the connection.
type closeRecorder struct {
	script
	closedPeer chan netip.AddrPort
}

func (h *closeRecorder) OnClose(c *Conn, err error) {
	h.script.OnClose(c, err)
	h.closedPeer <- c.RemoteAddr()
}

// TestRemoteAddrAfterReset: a handler that first asks for the peer's address when
// the connection closes, after the client reset it (as an access log line written at
// the end of an aborted download does), still gets the address, on every backend.
// The kernel forgets a reset socket's peer (getpeername fails with ENOTCONN), so the
// engine must keep it from the accept.
func TestRemoteAddrAfterReset(t *testing.T) {
	got := make(chan struct{}, 1)
	h := &closeRecorder{closedPeer: make(chan netip.AddrPort, 1)}
	h.data = func(c *Conn, in []byte) int {
		select {
		case got <- struct{}{}:
		default:
		}
		return len(in)
	}
	_, addr := startEngine(t, h, 1)
	c := testkit.Dial(t, addr)
	want := c.LocalAddr().(*net.TCPAddr).AddrPort()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the engine never read the bytes")
	}
	c.SetLinger(0) // close sends RST
	c.Close()
	select {
	case ap := <-h.closedPeer:
		if ap != want {
			t.Fatalf("RemoteAddr after the reset = %v, want %v", ap, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reset connection was never closed")
	}
}
