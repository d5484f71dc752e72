package server

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	xhttp2 "golang.org/x/net/http2"
)

// rapidResetUntilGoAway opens an HTTP/2 connection to addr and sends HEADERS +
// RST_STREAM pairs until the server's GOAWAY arrives; it returns the connection,
// the GOAWAY's code and when it was read.
func rapidResetUntilGoAway(t *testing.T, addr string) (net.Conn, xhttp2.ErrCode, time.Time) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(nc, xhttp2.ClientPreface)
	w := xhttp2.NewFramer(nc, nil)
	w.WriteSettings()
	away := make(chan xhttp2.ErrCode, 1)
	go func() {
		fr := xhttp2.NewFramer(io.Discard, nc)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if g, ok := f.(*xhttp2.GoAwayFrame); ok {
				away <- g.ErrCode
				return
			}
		}
	}()
	get := getBlock()
	for id := uint32(1); ; id += 2 {
		select {
		case code := <-away:
			return nc, code, time.Now()
		default:
		}
		if id > 1<<20 {
			t.Fatal("no GOAWAY after half a million rapid resets")
		}
		w.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: get, EndStream: true, EndHeaders: true})
		if err := w.WriteRSTStream(id, xhttp2.ErrCodeCancel); err != nil {
			select {
			case code := <-away:
				return nc, code, time.Now()
			case <-time.After(5 * time.Second):
				t.Fatalf("write failed before any GOAWAY: %v", err)
			}
		}
	}
}

// TestH2FloodTarpit: a connection cut off for rapid reset gets GOAWAY
// ENHANCE_YOUR_CALM and is then held unread: the client's writes block once the
// socket buffers are full (bounded bytes, not the megabytes a reading server
// would take), and the server closes it when FloodTarpit has passed, not
// before. Past MaxTarpitted a cut-off connection is closed at once.
func TestH2FloodTarpit(t *testing.T) {
	const tarpit = 1500 * time.Millisecond
	addr := startFloodServerOpts(t, HTTP2Options{WriteTimeout: time.Minute, FloodTarpit: tarpit, MaxTarpitted: 1})

	nc, code, at := rapidResetUntilGoAway(t, addr)
	if code != xhttp2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", code)
	}
	// The server reads no more: writes stall within a few socket buffers.
	junk := make([]byte, 64<<10)
	var sent int
	for sent < 256<<20 {
		nc.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := nc.Write(junk)
		sent += n
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			t.Fatalf("write after %d bytes: %v before the tarpit ended", sent, err)
		}
	}
	if sent >= 256<<20 {
		t.Fatalf("the server kept reading a tarpitted connection: %d MiB written", sent>>20)
	}
	t.Logf("writes stalled after %d KiB", sent>>10)

	// A second cut-off connection finds the tarpit full (MaxTarpitted 1): closed at once.
	nc2, code2, at2 := rapidResetUntilGoAway(t, addr)
	if code2 != xhttp2.ErrCodeEnhanceYourCalm {
		t.Fatalf("second connection: GOAWAY %v", code2)
	}
	nc2.SetReadDeadline(at2.Add(tarpit / 2))
	if _, err := io.Copy(io.Discard, nc2); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the second cut-off connection was held although the tarpit was full")
	}

	// The first one closes once its time is up (the read sees EOF or a reset).
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, nc)
	held := time.Since(at)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the tarpitted connection was never closed")
	}
	if held < tarpit*9/10 {
		t.Fatalf("closed %v after the GOAWAY, want about %v", held, tarpit)
	}
	t.Logf("held %v", held.Round(time.Millisecond))
}
