package server

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
	xhttp2 "golang.org/x/net/http2"
)

// startStallServer serves /big (a 256 KiB body) and /small over HTTP/2 only, with a
// write timeout of wto, on engine eng; closed gets /big's OnClose error.
func startStallServer(t *testing.T, eng string, wto time.Duration) (addr string, closed chan error) {
	t.Helper()
	if _, err := engine.New(engine.Config{Workers: 1, Backend: eng}); err != nil {
		t.Skipf("no %s engine here: %v", eng, err)
	}
	closed = make(chan error, 4)
	h := exchFunc(func(x Exchange) {
		if string(x.Path()) != "/big" {
			x.Respond(200, "text/plain", []byte("small"))
			return
		}
		x.OnClose(func(err error) {
			select {
			case closed <- err:
			default: // a test that does not read them must not block the loop
			}
		})
		x.SetContentLength(256 << 10)
		x.WriteHeader(200)
		x.Write(bytes.Repeat([]byte("b"), 256<<10))
		x.End()
	})
	s, err := New(Options{Handler: h, Workers: 1, Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ListenHTTP2("127.0.0.1:0", h, HTTP2Options{WriteTimeout: wto})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	shutdownAtCleanup(t, s)
	return l.Addr, closed
}

// bothEngines runs f on epoll and on io_uring (startStallServer skips an engine the
// machine lacks).
func bothEngines(t *testing.T, f func(t *testing.T, eng string)) {
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) { f(t, eng) })
	}
}

// readStream reads frames until stream id ends (a DATA or HEADERS frame with
// END_STREAM, or RST_STREAM) and returns its DATA and the reset code (-1 when none).
// A GOAWAY or a closed connection fails the test.
func readStream(t *testing.T, fr *xhttp2.Framer, id uint32) (data []byte, rst int) {
	t.Helper()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *xhttp2.GoAwayFrame:
			t.Fatalf("stream %d: GOAWAY %v", id, f.ErrCode)
		case *xhttp2.RSTStreamFrame:
			if f.StreamID == id {
				return data, int(f.ErrCode)
			}
		case *xhttp2.DataFrame:
			if f.StreamID == id {
				data = append(data, f.Data()...)
				if f.StreamEnded() {
					return data, -1
				}
			}
		case *xhttp2.HeadersFrame:
			if f.StreamID == id && f.StreamEnded() {
				return data, -1
			}
		}
	}
}

// wantWriteTimeout waits for the exchange's OnClose error, which must be the write
// timeout.
func wantWriteTimeout(t *testing.T, closed chan error) {
	t.Helper()
	select {
	case err := <-closed:
		if !errors.Is(err, engine.ErrWriteTimeout) {
			t.Fatalf("OnClose heard %v, want the write timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stalled exchange was not closed")
	}
}

// TestH2StalledStreamResetAlone: a client that never opens one stream's window (the
// connection's window open) loses that stream at the write timeout, with RST_STREAM
// CANCEL and ErrWriteTimeout for its exchange, while the connection's other streams
// are served before and after. The whole connection used to close with it. Both
// engines.
func TestH2StalledStreamResetAlone(t *testing.T) {
	bothEngines(t, func(t *testing.T, eng string) {
		const wto = 300 * time.Millisecond
		addr, closed := startStallServer(t, eng, wto)
		_, fr := testkit.H2Open(t, addr)
		fr.WriteSettingsAck()
		fr.WriteWindowUpdate(0, 16<<20) // the connection's window stays open
		fr.ReadMetaHeaders = nil
		testkit.H2Get(fr, 1, "/big")
		// Stream 1 takes its 65,535 octets and stalls; stream 3 is served meanwhile.
		testkit.H2Get(fr, 3, "/small")
		if body, rst := readStream(t, fr, 3); string(body) != "small" || rst != -1 {
			t.Fatalf("stream 3 beside the stalled one: %q, reset %d", body, rst)
		}
		start := time.Now()
		_, rst := readStream(t, fr, 1)
		if rst != int(xhttp2.ErrCodeCancel) {
			t.Fatalf("stalled stream ended with reset %d, want CANCEL", rst)
		}
		if d := time.Since(start); d > 10*wto {
			t.Errorf("stalled stream reset after %v, write timeout %v", d, wto)
		}
		wantWriteTimeout(t, closed)
		// The connection serves on, longer than the write timeout.
		for id := uint32(5); id <= 9; id += 2 {
			testkit.H2Get(fr, id, "/small")
			if body, rst := readStream(t, fr, id); string(body) != "small" || rst != -1 {
				t.Fatalf("stream %d after the reset: %q, reset %d", id, body, rst)
			}
			time.Sleep(wto / 2)
		}
	})
}

// stallConn opens a connection that gives every stream a 1 MiB window and never
// opens the connection's, and asks for /big on stream 1, which takes the
// connection's 65,535 octets: the connection's window is shut from then on.
func stallConn(t *testing.T, addr string) (*net.TCPConn, *xhttp2.Framer) {
	t.Helper()
	c, fr := testkit.H2Open(t, addr)
	fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1 << 20})
	fr.WriteSettingsAck()
	testkit.H2Get(fr, 1, "/big")
	return c, fr
}

// TestH2ConnWindowStallClosesConn: a client that keeps the connection's window shut
// (every stream's own window open) has stalled the whole connection, which closes
// at the write timeout, as before.
func TestH2ConnWindowStallClosesConn(t *testing.T) {
	bothEngines(t, func(t *testing.T, eng string) {
		const wto = 300 * time.Millisecond
		addr, closed := startStallServer(t, eng, wto)
		c, fr := stallConn(t, addr)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, err := fr.ReadFrame()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the connection was not closed")
			}
			if err != nil {
				break // closed
			}
		}
		wantWriteTimeout(t, closed)
	})
}

// TestH2ConnWindowStallNotKeptOpen: new streams that keep arriving while the
// connection's window stays shut do not keep the stalled connection open (each of
// them waits at once, none gets DATA out): it closes within two write timeouts of
// the stall, not after MaxConcurrentStreams of them (the first version of the
// per-stream stall timer let each new stream start the wait again).
func TestH2ConnWindowStallNotKeptOpen(t *testing.T) {
	bothEngines(t, func(t *testing.T, eng string) {
		const wto = 400 * time.Millisecond
		addr, _ := startStallServer(t, eng, wto)
		c, fr := stallConn(t, addr)
		closed := make(chan time.Time, 1)
		go func() {
			for {
				if _, err := fr.ReadFrame(); err != nil {
					closed <- time.Now()
					return
				}
			}
		}()
		start := time.Now()
		for id := uint32(3); ; id += 2 {
			select {
			case at := <-closed:
				if d := at.Sub(start); d > 2*wto+time.Second {
					t.Fatalf("closed after %v, write timeout %v", d, wto)
				}
				return
			case <-time.After(wto / 4):
			}
			if time.Since(start) > 10*wto {
				t.Fatal("the stalled connection was kept open by new streams")
			}
			c.SetWriteDeadline(time.Now().Add(time.Second))
			testkit.H2Get(fr, id, "/big")
		}
	})
}
