package server

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/internal/testkit"
	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2EarlyResponseDiscardsBody: a response that completes before the request body
// was read (a 401 to a POST, a 413 for a declared length past the body limit) lets
// the client send the rest of its body, which gale drops and returns to flow control,
// with no RST_STREAM: a reset after the response made curl 7.88 fail the transfer
// (error 92), and gale reset every such stream whose body had more than 256 KiB
// left. A body with more than h2DiscardMax left is still reset at once, and so is one
// that stops arriving, after timeouts.body (here 500 ms); such a stream used to stay
// open as long as the connection. On epoll and io_uring.
func TestH2EarlyResponseDiscardsBody(t *testing.T) {
	bothEngines(t, func(t *testing.T, eng string) {
		h := exchFunc(func(x Exchange) { x.Respond(401, "text/plain", []byte("no\n")) })
		lim := http1.DefaultLimits()
		lim.MaxBodyBytes = 1 << 20
		addr := startOnly(t, Options{Handler: h, Workers: 1, Engine: eng, Limits: lim, BodyTimeout: 500 * time.Millisecond}, true)
		for _, tc := range []struct {
			length, send int // declared length, octets the client sends
			status       string
			reset        bool
		}{
			{600000, 600000, "401", false},
			{2 << 20, 2 << 20, "413", false},
			{h2DiscardMax + 2, 0, "413", true},
			{-1, 1000, "401", true}, // stops sending: reset after timeouts.body
		} {
			status, rst, sent := postEarly(t, addr, tc.length, tc.send)
			if status != tc.status || rst != tc.reset || sent != tc.send {
				t.Errorf("POST of %d octets (%d sent): status %s, reset %v; want %s, reset %v, all sent",
					tc.length, sent, status, rst, tc.status, tc.reset)
			}
		}
	})
}

// postEarly POSTs on a new connection a body of length octets (-1: no
// content-length) and sends send octets of it within the windows gale grants,
// ending the stream when it sent them all unless length is -1; then it waits for
// a PING's answer, or for 3 s after the response when the stream was left open. It
// returns the response's status, whether stream 1 was reset with NO_ERROR, and
// how many octets went.
func postEarly(t *testing.T, addr string, length, send int) (status string, reset bool, sent int) {
	t.Helper()
	c, fr := testkit.H2Open(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	fields := []string{":method", "POST", ":scheme", "http", ":path", "/", ":authority", "x"}
	if length >= 0 {
		fields = append(fields, "content-length", strconv.Itoa(length))
	}
	for i := 0; i < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	if err := fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: send == 0 && length == 0}); err != nil {
		t.Fatal(err)
	}
	frames := make(chan h2event)
	go func() {
		defer close(frames)
		dec := hpack.NewDecoder(4096, nil)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			// Copied here: the Framer reuses a frame's payload for the next one.
			e := h2event{typ: f.Header().Type, stream: f.Header().StreamID, ack: f.Header().Flags.Has(xhttp2.FlagSettingsAck)}
			switch f := f.(type) {
			case *xhttp2.SettingsFrame:
				e.val, e.has = f.Value(xhttp2.SettingInitialWindowSize)
			case *xhttp2.WindowUpdateFrame:
				e.val = f.Increment
			case *xhttp2.HeadersFrame:
				if fs, _ := dec.DecodeFull(f.HeaderBlockFragment()); len(fs) > 0 {
					e.status = fs[0].Value
				}
			case *xhttp2.RSTStreamFrame:
				e.val = uint32(f.ErrCode)
			}
			frames <- e
		}
	}()
	streamWin, connWin, initial := int64(65535), int64(65535), int64(65535)
	chunk := make([]byte, 16384)
	pinged := false
	var deadline <-chan time.Time
	for {
		for sent < send && streamWin > 0 && connWin > 0 && !reset {
			n := int(min(int64(send-sent), streamWin, connWin, int64(len(chunk))))
			end := sent+n == send && length >= 0
			if err := fr.WriteData(1, end, chunk[:n]); err != nil {
				return status, reset, sent
			}
			sent += n
			streamWin -= int64(n)
			connWin -= int64(n)
		}
		if (sent == send && length >= 0 || reset) && !pinged {
			pinged = true
			fr.WritePing(false, [8]byte{1})
		}
		var e h2event
		var ok bool
		select {
		case e, ok = <-frames:
		case <-deadline:
			return status, reset, sent
		}
		if !ok {
			return status, reset, sent
		}
		switch e.typ {
		case xhttp2.FrameSettings:
			if !e.ack {
				if e.has {
					streamWin += int64(e.val) - initial
					initial = int64(e.val)
				}
				fr.WriteSettingsAck()
			}
		case xhttp2.FrameWindowUpdate:
			if e.stream == 0 {
				connWin += int64(e.val)
			} else {
				streamWin += int64(e.val)
			}
		case xhttp2.FrameHeaders:
			status = e.status
			if length < 0 {
				deadline = time.After(3 * time.Second)
			}
		case xhttp2.FrameRSTStream:
			reset = reset || xhttp2.ErrCode(e.val) == xhttp2.ErrCodeNo
			if length < 0 {
				return status, reset, sent
			}
		case xhttp2.FramePing:
			if e.ack {
				return status, reset, sent
			}
		}
	}
}

// h2event is what postEarly needs of one frame the server sent.
type h2event struct {
	typ    xhttp2.FrameType
	stream uint32
	ack    bool   // SETTINGS or PING acknowledgement (the same flag bit)
	val    uint32 // SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_UPDATE increment, RST_STREAM code
	has    bool   // the SETTINGS carries SETTINGS_INITIAL_WINDOW_SIZE
	status string
}
