//go:build linux && !galenet

package tlsterm

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/server"
	"golang.org/x/sys/unix"
)

// holdingClient pauses reading after its first bytes and waits for the test to
// resume it; it records how much it had received when OnEOF came.
type holdingClient struct {
	engine.NopHandler
	ec    *engine.Conn
	got   []byte
	atEOF int
	eof   bool
}

func (h *holdingClient) OnData(ec *engine.Conn, in []byte) int {
	if h.ec == nil {
		h.ec = ec
		ec.PauseRead()
	}
	h.got = append(h.got, in...)
	return len(in)
}

func (h *holdingClient) OnEOF(*engine.Conn) {
	if !h.eof {
		h.eof, h.atEOF = true, len(h.got)
	}
}

func (h *holdingClient) OnShutdown(ec *engine.Conn) { ec.Close(nil) }

// TestDialerEOFAfterBufferedRecords: the origin sends several records in one
// TCP write and closes (a FIN without close_notify) while the handler is paused
// after the first: the records crypto/tls holds come before the end of stream,
// so OnEOF must wait until the resume has delivered them (the proxy ended a
// close-delimited body at the FIN and lost them). TLS 1.2 and 1.3.
func TestDialerEOFAfterBufferedRecords(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) { dialerEOFAfterRecords(t, ver.v) })
	}
}

func dialerEOFAfterRecords(t *testing.T, version uint16) {
	addr, ca, want := recordOrigin(t, version, func(raw net.Conn) {
		// A FIN with no close_notify; reading on until gale closes, so that the
		// close is not a reset.
		raw.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, raw)
	})
	s := newEngine(t)
	d, err := NewDialer(DialOptions{Loops: len(s.Engine().Loops()), Config: &tls.Config{RootCAs: ca.Pool()}})
	if err != nil {
		t.Fatal(err)
	}
	h := &holdingClient{}
	l := s.Engine().Loops()[0]
	var layer server.Layer
	onLoop := func(f func()) {
		done := make(chan struct{})
		l.Post(func() { f(); close(done) })
		<-done
	}
	l.Post(func() {
		_, ly, err := d.Dial(l, addr, 5*time.Second, h)
		if err != nil {
			t.Error(err)
			return
		}
		layer = ly
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		var fin bool
		onLoop(func() {
			if h.ec == nil {
				return
			}
			if ti, err := unix.GetsockoptTCPInfo(h.ec.Fd(), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				fin = ti.State == unix.BPF_TCP_CLOSE_WAIT || ti.State == unix.BPF_TCP_LAST_ACK
			}
		})
		if fin {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no first bytes, or no FIN from the origin")
		}
		time.Sleep(5 * time.Millisecond)
	}
	onLoop(func() {}) // the poller's event for the FIN has been handled
	onLoop(func() {})
	var eof bool
	var n int
	onLoop(func() { eof, n = h.eof, len(h.got) })
	if eof && n < len(want) {
		t.Fatalf("OnEOF with %d of %d bytes delivered: the records crypto/tls held came after it", n, len(want))
	}
	onLoop(func() { layer.ResumeRead() })
	for {
		var got []byte
		var at int
		onLoop(func() { eof, got, at = h.eof, h.got, h.atEOF })
		if eof {
			if !bytes.Equal(got, want) || at != len(want) {
				t.Fatalf("OnEOF after %d bytes, got %q; want all %d before it", at, got, len(want))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no OnEOF after the resume (%d of %d bytes)", len(got), len(want))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
