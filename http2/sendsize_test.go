package http2

import (
	"bytes"
	"testing"

	xhttp2 "golang.org/x/net/http2"
)

// windowClient plays a client that returns window as nghttp2 does: once half of what
// it granted (the stream's and the connection's) has arrived. It reports the sizes of
// the DATA frames it got for stream 1 and their content.
func windowClient(t *testing.T, streamWindow int64, body []byte) (sizes []int, got []byte) {
	t.Helper()
	r := newRig(t, Config{})
	if streamWindow != InitialWindow {
		r.mustFeed(AppendSettings(nil, false, Setting{SettingInitialWindowSize, uint32(streamWindow)}))
	}
	r.serveBody(body)
	r.mustFeed(r.get(1, true))
	var streamOwed, connOwed int64
	for i := 0; i < 10000; i++ {
		var wu []byte
		ended := false
		r.eachFrame(func(f xhttp2.Frame) {
			if d, ok := f.(*xhttp2.DataFrame); ok {
				sizes = append(sizes, len(d.Data()))
				got = append(got, d.Data()...)
				streamOwed += int64(len(d.Data()))
				connOwed += int64(len(d.Data()))
				ended = ended || d.StreamEnded()
			}
		})
		if ended {
			return sizes, got
		}
		if 2*connOwed >= InitialWindow {
			wu = AppendWindowUpdate(wu, 0, uint32(connOwed))
			connOwed = 0
		}
		if 2*streamOwed >= streamWindow {
			wu = AppendWindowUpdate(wu, 1, uint32(streamOwed))
			streamOwed = 0
		}
		if wu == nil {
			t.Fatalf("stalled after %d of %d octets: windows %d (stream) %d (connection) left", len(got),
				len(body), streamWindow-streamOwed, InitialWindow-connOwed)
		}
		r.mustFeed(wu)
	}
	t.Fatal("the body never ended")
	return nil, nil
}

// TestDataFramesFullSize checks that a large body through a client's default windows
// goes out in full frames: gale used to send the rest of a 65,535-octet window as a
// frame of its own (16,383 octets, then 1 octet as the next update came), and frames of
// every size below 16,384 after it. A client with a small window (nghttp -w 10) still
// gets its body, in frames no smaller than half its window.
func TestDataFramesFullSize(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	sizes, got := windowClient(t, InitialWindow, body)
	if !bytes.Equal(got, body) {
		t.Fatalf("got %d octets, want %d", len(got), len(body))
	}
	for i, n := range sizes {
		if n != MinMaxFrameSize {
			t.Fatalf("frame %d of %d has %d octets, want %d: %v", i, len(sizes), n, MinMaxFrameSize, sizes[:i+1])
		}
	}
	for _, w := range []int64{1024, 1000, 40000} {
		sizes, got = windowClient(t, w, body[:100000])
		if !bytes.Equal(got, body[:100000]) {
			t.Fatalf("window %d: got %d octets, want 100000", w, len(got))
		}
		for i, n := range sizes[:len(sizes)-1] {
			if int64(n) < min(w/2, MinMaxFrameSize) {
				t.Fatalf("window %d: frame %d has %d octets: %v", w, i, n, sizes)
			}
		}
	}
}

// TestSendWindowHeldCountsShut checks that a stream waiting for its window to reach a
// useful frame reports that window as shut, so the server's write timeout resets the
// stream alone instead of closing the connection for it.
func TestSendWindowHeldCountsShut(t *testing.T) {
	r := newRig(t, Config{})
	r.mustFeed(r.get(1, true))
	_ = r.c.WriteHeaders(1, 200, nil, false)
	body := make([]byte, 100000)
	n, _ := r.c.WriteData(1, body, true)
	if n != InitialWindow-InitialWindow%MinMaxFrameSize {
		t.Fatalf("took %d octets, want %d full frames", n, InitialWindow/MinMaxFrameSize)
	}
	if sw, _ := r.c.SendWindow(1); sw != 0 {
		t.Fatalf("stream window %d reported while the stream waits for a full frame", sw)
	}
	r.mustFeed(AppendWindowUpdate(nil, 0, 1<<20))
	if sw, _ := r.c.SendWindow(1); sw != 0 || len(r.h.writable) != 0 {
		t.Fatalf("stream window %d, %d OnWritable after a connection update", sw, len(r.h.writable))
	}
	r.mustFeed(AppendWindowUpdate(nil, 1, 1))
	if len(r.h.writable) != 1 {
		t.Fatal("no OnWritable once the window allowed a full frame")
	}
}
