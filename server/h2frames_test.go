package server

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
	xhttp2 "golang.org/x/net/http2"
)

// TestH2FileFramesFullSize serves a 1 MiB file over HTTP/2, on both engines, to a
// client whose 10,000-octet stream window it returns after each frame: every DATA
// frame but the last fills the window. The file used to go out in frames that ended
// each 64 KiB read chunk, so the window's rest of a chunk went alone (10,000 × 6, then
// 5,536) and frames of 1 to 16 octets followed nghttp's 65,535-octet windows.
func TestH2FileFramesFullSize(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	bothEngines(t, func(t *testing.T, eng string) {
		addr := startFileServer(t, eng, path, int64(len(body)))
		for _, w := range []int{10000} {
			fileFrames(t, addr, w, body)
		}
	})
}

// fileFrames gets /f on a new connection whose stream window is w, returning window
// once half of it (or of the connection's 65,535) has arrived, and checks that every
// DATA frame but the last is as large as the window and the frame size allow:
// min(w, 16,384) octets, as the client returns each frame's window before the next.
func fileFrames(t *testing.T, addr string, w int, body []byte) {
	t.Helper()
	c, fr := testkit.H2Open(t, addr)
	defer c.Close()
	if err := fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: uint32(w)}); err != nil {
		t.Fatal(err)
	}
	if err := testkit.H2Get(fr, 1, "/f"); err != nil {
		t.Fatal(err)
	}
	var got []byte
	var sizes []int
	owed, connOwed := 0, 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v (after %d octets in %v)", err, len(got), sizes)
		}
		if rst, ok := f.(*xhttp2.RSTStreamFrame); ok {
			t.Fatalf("RST_STREAM %v", rst.ErrCode)
		}
		d, ok := f.(*xhttp2.DataFrame)
		if !ok {
			continue
		}
		got = append(got, d.Data()...)
		sizes = append(sizes, len(d.Data()))
		if d.StreamEnded() {
			break
		}
		owed += len(d.Data())
		connOwed += len(d.Data())
		if 2*connOwed >= 65535 {
			fr.WriteWindowUpdate(0, uint32(connOwed))
			connOwed = 0
		}
		if 2*owed >= w {
			fr.WriteWindowUpdate(1, uint32(owed))
			owed = 0
		}
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("window %d: got %d octets, want %d", w, len(got), len(body))
	}
	for i, n := range sizes[:len(sizes)-1] {
		if n < min(w, 16384) {
			t.Fatalf("window %d: DATA frame %d of %d has %d octets: %v", w, i, len(sizes), n, sizes[:i+1])
		}
	}
}

// startFileServer serves the file at path (n octets) with SendFile at /f, over
// HTTP/2 only, on engine eng.
func startFileServer(t *testing.T, eng, path string, n int64) string {
	t.Helper()
	h := exchFunc(func(x Exchange) {
		f, err := os.Open(path)
		if err != nil {
			x.Error(500, err.Error())
			return
		}
		x.SetContentLength(n)
		x.WriteHeader(200)
		x.SendFile(int(f.Fd()), 0, n, func() { f.Close() })
		x.End()
	})
	return startOnly(t, Options{Handler: h, Workers: 1, Engine: eng}, true)
}

// startOnly starts a server with o serving o.Handler over HTTP/2 only (h2) or
// HTTP/1.1 only, skipping the test when the machine lacks o.Engine, and returns its
// address.
func startOnly(t *testing.T, o Options, h2 bool) string {
	t.Helper()
	if _, err := engine.New(engine.Config{Workers: 1, Backend: o.Engine}); err != nil {
		t.Skipf("no %s engine here: %v", o.Engine, err)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	if h2 {
		var l *Listener
		l, err = s.ListenHTTP2("127.0.0.1:0", o.Handler, HTTP2Options{})
		if l != nil {
			addr = l.Addr
		}
	} else {
		addr, err = s.Listen("127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	shutdownAtCleanup(t, s)
	return addr
}
