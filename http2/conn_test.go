package http2

import (
	"bytes"
	"strings"
	"testing"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestConnRequestResponse(t *testing.T) {
	r := newRig(t, Config{})
	r.h.onRequest = func(s *Stream) {
		if err := r.c.WriteHeaders(s.ID, 200, []Field{{"Content-Type", "text/plain"}, {"connection", "close"}}, false); err != nil {
			t.Fatal(err)
		}
		if n, err := r.c.WriteData(s.ID, []byte("hello"), true); n != 5 || err != nil {
			t.Fatalf("WriteData %d %v", n, err)
		}
	}
	r.mustFeed(r.get(1, true, "user-agent", "t", "priority", "u=1, i"))
	if len(r.h.requests) != 1 {
		t.Fatalf("%d requests", len(r.h.requests))
	}
	s := r.h.requests[0]
	if s.Method != "GET" || s.Path != "/" || s.Scheme != "http" || s.Authority != "x" ||
		len(s.Header) != 2 || s.Header[0] != (Field{"user-agent", "t"}) || s.Priority != (Priority{1, true}) {
		t.Fatalf("request %+v", s)
	}
	fs := r.frames()
	if len(fs) != 2 {
		t.Fatalf("frames %v", fs)
	}
	h := fs[0].(*xhttp2.MetaHeadersFrame)
	if h.PseudoValue("status") != "200" || len(h.RegularFields()) != 1 || h.RegularFields()[0].Name != "content-type" {
		t.Fatalf("response headers %v", h.Fields)
	}
	d := fs[1].(*xhttp2.DataFrame)
	if string(d.Data()) != "hello" || !d.StreamEnded() {
		t.Fatalf("data %q", d.Data())
	}
	if r.c.streams != nil || r.c.out != nil {
		t.Fatalf("idle connection holds state: streams %v out %d", r.c.streams, cap(r.c.out))
	}
}

func TestConnPreface(t *testing.T) {
	c := NewConn(Config{}, newRecorder())
	if n, err := c.Feed([]byte(Preface[:10])); n != 0 || err != nil {
		t.Fatalf("partial preface: %d %v", n, err)
	}
	if _, err := c.Feed([]byte("GET / HTTP/1.1\r\n\r\n")); err == nil {
		t.Fatal("HTTP/1.1 accepted as a preface")
	}
	c = NewConn(Config{}, newRecorder())
	in := append([]byte(Preface), AppendPing(nil, false, [8]byte{})...)
	if _, err := c.Feed(in); err == nil || err.(*ConnError).Code != ErrCodeProtocol {
		t.Fatalf("first frame PING: %v", err)
	}
}

func TestConnSettings(t *testing.T) {
	r := newRig(t, Config{})
	if !r.c.SettingsAcked() {
		t.Fatal("ACK not recorded")
	}
	r.mustFeed(AppendSettings(nil, false, Setting{SettingMaxFrameSize, 1 << 20}, Setting{SettingHeaderTableSize, 0}))
	fs := r.frames()
	if sf, ok := fs[0].(*xhttp2.SettingsFrame); len(fs) != 1 || !ok || !sf.IsAck() {
		t.Fatalf("no SETTINGS ACK: %v", fs)
	}
	c := NewConn(Config{}, newRecorder())
	if err := c.SettingsTimeout(); err == nil || err.(*ConnError).Code != ErrCodeSettingsTimeout {
		t.Fatalf("SettingsTimeout: %v", err)
	}
}

func TestConnMalformedRequests(t *testing.T) {
	cases := map[string][]string{
		"uppercase":       {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", "User-Agent", "x"},
		"connection":      {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", "connection", "keep-alive"},
		"te":              {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", "te", "gzip"},
		"no-path":         {":method", "GET", ":scheme", "http", ":authority", "x"},
		"empty-path":      {":method", "GET", ":scheme", "http", ":authority", "x", ":path", ""},
		"pseudo-late":     {":method", "GET", ":scheme", "http", ":authority", "x", "a", "b", ":path", "/"},
		"pseudo-unknown":  {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", ":foo", "x"},
		"pseudo-dup":      {":method", "GET", ":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/"},
		"status":          {":status", "200", ":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/"},
		"bad-value":       {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", "a", "b\x00"},
		"connect-path":    {":method", "CONNECT", ":authority", "x", ":path", "/"},
		"host-mismatch":   {":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a", "host", "b"},
		"cl-no-body":      {":method", "POST", ":scheme", "http", ":authority", "x", ":path", "/", "content-length", "3"},
		"cl-conflict":     {":method", "POST", ":scheme", "http", ":authority", "x", ":path", "/", "content-length", "3", "content-length", "4"},
		"path-not-origin": {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "x"},
		"path-control":    {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/a\x01b"},
		"path-tab":        {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/a\tb"},
		"path-space":      {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/a b"},
		"path-del":        {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/a\x7f"},
		"path-fragment":   {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/a#b"},
		"authority-quote": {":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a\"b"},
		"authority-slash": {":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a/b"},
		"authority-ctl":   {":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a\x01"},
		// What gale's HTTP/1.1 parser answers 400 is malformed here too: the proxy
		// would write it into an HTTP/1.1 request line or Host field.
		"method-space":       {":method", "GET /admin?", ":scheme", "http", ":authority", "x", ":path", "/"},
		"method-ctl":         {":method", "GET\x01", ":scheme", "http", ":authority", "x", ":path", "/"},
		"scheme-space":       {":method", "GET", ":scheme", "ht tp", ":authority", "x", ":path", "/"},
		"scheme-digit":       {":method", "GET", ":scheme", "1http", ":authority", "x", ":path", "/"},
		"authority-userinfo": {":method", "GET", ":scheme", "http", ":path", "/", ":authority", "u@x"},
		"authority-port":     {":method", "GET", ":scheme", "http", ":path", "/", ":authority", "x:abc"},
		"authority-bracket":  {":method", "GET", ":scheme", "http", ":path", "/", ":authority", "[::1"},
		"connect-userinfo":   {":method", "CONNECT", ":authority", "u@x:443"},
		"host-invalid":       {":method", "GET", ":scheme", "http", ":path", "/", "host", "a b/c"},
		"host-userinfo":      {":method", "GET", ":scheme", "http", ":path", "/", "host", "u@x"},
		"host-twice":         {":method", "GET", ":scheme", "http", ":path", "/", "host", "a", "host", "b"},
		"host-twice-same":    {":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a", "host", "a", "host", "a"},
		"value-ctl":          {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", "a", "b\x01c"},
		"value-del":          {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", "a", "b\x7fc"},
		// An http or https request without its host (RFC 9113 §8.3.1), which
		// HTTP/1.1 answers 400 without Host or with an empty one.
		"no-authority":       {":method", "GET", ":scheme", "http", ":path", "/"},
		"no-authority-https": {":method", "GET", ":scheme", "https", ":path", "/"},
		"empty-host":         {":method", "GET", ":scheme", "http", ":path", "/", ":authority", "", "host", ""},
		"value-vt":           {":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", "a", "b\x0bc"},
	}
	for name, fields := range cases {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, Config{})
			r.mustFeed(AppendHeaders(nil, 1, r.block(fields...), true, MinMaxFrameSize))
			if len(r.h.requests) != 0 || rstCode(r.frames(), 1) != int(ErrCodeProtocol) {
				t.Fatal("malformed request not reset with PROTOCOL_ERROR")
			}
			if r.c.Glitches() != 1 {
				t.Fatalf("glitches %d", r.c.Glitches())
			}
			// The connection goes on.
			r.mustFeed(r.get(3, true))
			if len(r.h.requests) != 1 {
				t.Fatal("next request lost")
			}
		})
	}
}

func TestConnContentLength(t *testing.T) {
	r := newRig(t, Config{})
	post := r.block(":method", "POST", ":scheme", "http", ":path", "/", ":authority", "x", "content-length", "3")
	r.mustFeed(AppendHeaders(nil, 1, post, false, MinMaxFrameSize))
	r.mustFeed(AppendData(nil, 1, []byte("abcd"), true))
	if rstCode(r.frames(), 1) != int(ErrCodeProtocol) || r.h.resets[1] != ErrCodeProtocol {
		t.Fatal("body longer than content-length not reset")
	}
	r.mustFeed(AppendHeaders(nil, 3, post, false, MinMaxFrameSize))
	r.mustFeed(AppendData(nil, 3, []byte("ab"), true))
	if rstCode(r.frames(), 3) != int(ErrCodeProtocol) {
		t.Fatal("body shorter than content-length not reset")
	}
	r.mustFeed(AppendHeaders(nil, 5, post, false, MinMaxFrameSize))
	r.mustFeed(AppendData(nil, 5, []byte("abc"), true))
	if string(r.h.data[5]) != "abc" || !r.h.ended[5] {
		t.Fatalf("exact body: %q", r.h.data[5])
	}
}

func TestConnStreamStates(t *testing.T) {
	type step func(r *rig) error
	cases := []struct {
		name  string
		steps []step
		conn  ErrCode // connection error expected, or
		rst   int     // RST_STREAM code expected on stream 1
	}{
		{"data-idle", []step{func(r *rig) error { return r.feed(AppendData(nil, 1, []byte("x"), false)) }}, ErrCodeProtocol, -1},
		{"rst-idle", []step{func(r *rig) error { return r.feed(AppendRSTStream(nil, 1, ErrCodeCancel)) }}, ErrCodeProtocol, -1},
		{"window-idle", []step{func(r *rig) error { return r.feed(AppendWindowUpdate(nil, 1, 1)) }}, ErrCodeProtocol, -1},
		{"headers-even", []step{func(r *rig) error { return r.feed(r.get(2, true)) }}, ErrCodeProtocol, -1},
		{"push-promise", []step{func(r *rig) error {
			return r.feed(append(AppendFrameHeader(nil, 4, FramePushPromise, FlagEndHeaders, 1), 0, 0, 0, 2))
		}}, ErrCodeProtocol, -1},
		{"id-goes-down", []step{
			func(r *rig) error { return r.feed(r.get(5, false)) },
			func(r *rig) error { return r.feed(r.get(3, false)) }}, ErrCodeProtocol, -1},
		{"continuation-alone", []step{func(r *rig) error {
			return r.feed(append(AppendFrameHeader(nil, 1, FrameContinuation, FlagEndHeaders, 1), 0x82))
		}}, ErrCodeProtocol, -1},
		{"interleaved-block", []step{func(r *rig) error {
			b := r.block(":method", "GET", ":scheme", "http", ":path", "/")
			in := append(AppendFrameHeader(nil, uint32(len(b)), FrameHeaders, 0, 1), b...)
			return r.feed(AppendPing(in, false, [8]byte{}))
		}}, ErrCodeProtocol, -1},
		{"data-half-closed", []step{
			func(r *rig) error { return r.feed(r.get(1, true)) },
			func(r *rig) error { return r.feed(AppendData(nil, 1, []byte("x"), false)) }}, 0, int(ErrCodeStreamClosed)},
		{"trailers-without-end", []step{
			func(r *rig) error { return r.feed(r.get(1, false)) },
			func(r *rig) error { return r.feed(AppendHeaders(nil, 1, r.block("a", "b"), false, MinMaxFrameSize)) }}, 0, int(ErrCodeProtocol)},
		{"trailers-pseudo", []step{
			func(r *rig) error { return r.feed(r.get(1, false)) },
			func(r *rig) error { return r.feed(AppendHeaders(nil, 1, r.block(":path", "/"), true, MinMaxFrameSize)) }}, 0, int(ErrCodeProtocol)},
		{"priority-self", []step{func(r *rig) error {
			return r.feed(AppendPriority(nil, 1, PriorityParam{StreamDep: 1}))
		}}, 0, int(ErrCodeProtocol)},
		{"window-overflow-stream", []step{
			func(r *rig) error { return r.feed(r.get(1, false)) },
			func(r *rig) error { return r.feed(AppendWindowUpdate(nil, 1, MaxWindow)) }}, 0, int(ErrCodeFlowControl)},
		{"window-overflow-conn", []step{func(r *rig) error { return r.feed(AppendWindowUpdate(nil, 0, MaxWindow)) }}, ErrCodeFlowControl, -1},
		{"stream-window-exceeded", []step{
			func(r *rig) error { return r.feed(r.get(1, false)) },
			func(r *rig) error { return r.feed(AppendData(nil, 1, []byte("xy"), false)) }}, 0, int(ErrCodeFlowControl)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{InitialStreamWindow: 1})
			var err error
			for _, st := range tc.steps {
				if err = st(r); err != nil {
					break
				}
			}
			if tc.conn != 0 {
				r.wantConnErr(err, tc.conn)
				return
			}
			if err != nil {
				t.Fatalf("connection error %v", err)
			}
			if got := rstCode(r.frames(), 1); got != tc.rst {
				t.Fatalf("RST_STREAM code %d, want %d", got, tc.rst)
			}
		})
	}
}

func TestConnClosedStream(t *testing.T) {
	r := newRig(t, Config{})
	r.h.onRequest = func(s *Stream) { _ = r.c.WriteHeaders(s.ID, 204, nil, true) }
	r.mustFeed(r.get(1, true))
	r.frames()
	// Frames that may race with the close are ignored.
	r.mustFeed(AppendWindowUpdate(nil, 1, 10))
	r.mustFeed(AppendRSTStream(nil, 1, ErrCodeCancel))
	r.mustFeed(AppendPriority(nil, 1, PriorityParam{StreamDep: 0, Weight: 1}))
	if fs := r.frames(); len(fs) != 0 {
		t.Fatalf("answered %v", fs)
	}
	r.mustFeed(AppendData(nil, 1, []byte("x"), false))
	if rstCode(r.frames(), 1) != int(ErrCodeStreamClosed) {
		t.Fatal("DATA on a closed stream not answered with STREAM_CLOSED")
	}
	r.wantConnErr(r.feed(r.get(1, true)), ErrCodeStreamClosed)
}

func TestConnTrailersAndBody(t *testing.T) {
	r := newRig(t, Config{})
	r.mustFeed(r.get(1, false))
	r.mustFeed(AppendData(nil, 1, []byte("part1"), false))
	r.mustFeed(AppendHeaders(nil, 1, r.block("x-sum", "42"), true, MinMaxFrameSize))
	if string(r.h.data[1]) != "part1" || len(r.h.trailers[1]) != 1 || r.h.trailers[1][0] != (Field{"x-sum", "42"}) {
		t.Fatalf("body %q trailers %v", r.h.data[1], r.h.trailers[1])
	}
	if err := r.c.WriteHeaders(1, 200, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.WriteData(1, []byte("resp"), false); err != nil {
		t.Fatal(err)
	}
	if err := r.c.WriteTrailers(1, []Field{{"grpc-status", "0"}, {":status", "1"}}); err != nil {
		t.Fatal(err)
	}
	r.drain()
	fs := r.frames()
	tr := fs[len(fs)-1].(*xhttp2.MetaHeadersFrame)
	if !tr.StreamEnded() || len(tr.Fields) != 1 || tr.Fields[0].Name != "grpc-status" {
		t.Fatalf("trailers %v", tr.Fields)
	}
	if _, err := r.c.WriteData(1, []byte("late"), false); err != ErrStreamClosed {
		t.Fatalf("write after the end: %v", err)
	}
}

// TestConnForbiddenTrailers: request trailers carrying a field RFC 9110 §6.5.1 keeps
// out of trailers reset the stream with PROTOCOL_ERROR (the handler hears it) instead
// of reaching the application, which would forward them upstream; the connection
// goes on.
func TestConnForbiddenTrailers(t *testing.T) {
	for _, name := range []string{"content-length", "host", "authorization", "cookie", "expect", "content-type", "te"} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, Config{})
			r.mustFeed(r.get(1, false))
			r.mustFeed(AppendData(nil, 1, []byte("part1"), false))
			r.mustFeed(AppendHeaders(nil, 1, r.block("x-sum", "42", name, "trailers"), true, MinMaxFrameSize))
			if rstCode(r.frames(), 1) != int(ErrCodeProtocol) || r.h.resets[1] != ErrCodeProtocol {
				t.Fatalf("trailers with %s not reset with PROTOCOL_ERROR", name)
			}
			if len(r.h.trailers[1]) != 0 {
				t.Fatalf("trailers delivered: %v", r.h.trailers[1])
			}
			r.mustFeed(r.get(3, true))
			if len(r.h.requests) != 2 {
				t.Fatal("next request lost")
			}
		})
	}
}

func TestConnReceiveWindowFollowsConsumption(t *testing.T) {
	r := newRig(t, Config{InitialStreamWindow: 20000, ConnWindow: InitialWindow})
	r.mustFeed(r.get(1, false))
	r.mustFeed(AppendData(nil, 1, bytes.Repeat([]byte("a"), 16384), false))
	r.mustFeed(AppendData(nil, 1, bytes.Repeat([]byte("a"), 20000-16384), false))
	if fs := r.frames(); len(fs) != 0 {
		t.Fatalf("window replenished before the application consumed: %v", fs)
	}
	if err := r.feed(AppendData(nil, 1, []byte("b"), false)); err != nil {
		t.Fatal(err)
	}
	if rstCode(r.frames(), 1) != int(ErrCodeFlowControl) {
		t.Fatal("DATA beyond the stream window accepted")
	}
	r.mustFeed(r.get(3, false))
	r.mustFeed(AppendData(nil, 3, bytes.Repeat([]byte("a"), 13000), false))
	r.c.Consumed(3, 9000)
	if fs := r.frames(); len(fs) != 0 {
		t.Fatalf("update below half a window: %v", fs)
	}
	r.c.Consumed(3, 4000)
	r.drain()
	var streamInc, connInc uint32
	for _, f := range r.frames() {
		if w, ok := f.(*xhttp2.WindowUpdateFrame); ok && w.StreamID == 3 {
			streamInc = w.Increment
		} else if ok {
			connInc = w.Increment
		}
	}
	// The connection got back stream 1's 20,001 octets when it was reset, plus 13,000.
	if streamInc != 13000 || connInc != 33001 {
		t.Fatalf("WINDOW_UPDATE stream %d conn %d", streamInc, connInc)
	}
}

func TestConnSendWindowOneByte(t *testing.T) {
	r := newRig(t, Config{})
	r.mustFeed(AppendSettings(nil, false, Setting{SettingInitialWindowSize, 1}))
	body := []byte("0123456789")
	sent := r.serveBody(body)
	r.mustFeed(r.get(1, true))
	var got []byte
	for i := 0; i < 20 && *sent < len(body); i++ {
		for _, f := range r.frames() {
			if d, ok := f.(*xhttp2.DataFrame); ok {
				if len(d.Data()) > 1 {
					t.Fatalf("DATA of %d octets with a 1-octet window", len(d.Data()))
				}
				got = append(got, d.Data()...)
			}
		}
		r.mustFeed(AppendWindowUpdate(nil, 1, 1))
	}
	for _, f := range r.frames() {
		if d, ok := f.(*xhttp2.DataFrame); ok {
			got = append(got, d.Data()...)
		}
	}
	if string(got) != string(body) || len(r.h.writable) != len(body)-1 {
		t.Fatalf("got %q after %d OnWritable", got, len(r.h.writable))
	}
	// A SETTINGS change of the initial window applies to open streams.
	r2 := newRig(t, Config{})
	r2.mustFeed(AppendSettings(nil, false, Setting{SettingInitialWindowSize, 0}))
	r2.mustFeed(r2.get(1, true))
	_ = r2.c.WriteHeaders(1, 200, nil, false)
	if n, _ := r2.c.WriteData(1, []byte("abc"), true); n != 0 {
		t.Fatalf("sent %d with a zero window", n)
	}
	r2.mustFeed(AppendSettings(nil, false, Setting{SettingInitialWindowSize, 2}))
	if len(r2.h.writable) != 1 {
		t.Fatal("no OnWritable after SETTINGS opened the window")
	}
}

func TestConnShutdown(t *testing.T) {
	r := newRig(t, Config{})
	r.mustFeed(r.get(1, false))
	r.c.Shutdown()
	r.drain()
	fs := r.frames()
	g, ok := fs[0].(*xhttp2.GoAwayFrame)
	if !ok || g.LastStreamID != MaxWindow || g.ErrCode != 0 {
		t.Fatalf("first GOAWAY %v", fs)
	}
	p := fs[1].(*xhttp2.PingFrame)
	r.mustFeed(r.get(3, false)) // still accepted before the round trip
	r.mustFeed(AppendPing(nil, true, p.Data))
	fs = r.frames()
	if g, ok := fs[0].(*xhttp2.GoAwayFrame); !ok || g.LastStreamID != 3 {
		t.Fatalf("final GOAWAY %v", fs)
	}
	r.mustFeed(r.get(5, true))
	if len(r.h.requests) != 2 || r.c.Done() || r.c.NumStreams() != 2 {
		t.Fatalf("requests %d, done %v", len(r.h.requests), r.c.Done())
	}
	r.c.ResetStream(1, ErrCodeCancel)
	_ = r.c.WriteHeaders(3, 200, nil, true)
	r.mustFeed(AppendData(nil, 3, nil, true))
	if !r.c.Done() {
		t.Fatal("not done once every stream ended")
	}
}

func TestConnPingAndGoAway(t *testing.T) {
	r := newRig(t, Config{})
	r.mustFeed(AppendPing(nil, false, [8]byte{9, 8, 7}))
	if p, ok := r.frames()[0].(*xhttp2.PingFrame); !ok || !p.IsAck() || p.Data[0] != 9 {
		t.Fatal("PING not acknowledged")
	}
	r.mustFeed(AppendGoAway(nil, 0, ErrCodeNo, []byte("bye")))
	if len(r.h.goaway) != 1 || !r.c.Done() {
		t.Fatal("client GOAWAY not reported")
	}
}

func TestConnUnknownFramesIgnored(t *testing.T) {
	r := newRig(t, Config{})
	in := append(AppendFrameHeader(nil, 3, 0xee, 0xff, 1), 1, 2, 3)
	in = append(in, r.get(1, true)...)
	r.mustFeed(in)
	if len(r.h.requests) != 1 {
		t.Fatal("request after an unknown frame lost")
	}
}

func TestConnPriorityUpdate(t *testing.T) {
	r := newRig(t, Config{})
	r.mustFeed(r.get(1, false))
	in := AppendFrameHeader(nil, 7, FramePriorityUpdate, 0, 0)
	r.mustFeed(append(in, 0, 0, 0, 1, 'u', '=', '0'))
	if r.h.requests[0].Priority.Urgency != 0 {
		t.Fatalf("priority %+v", r.h.requests[0].Priority)
	}
	for in, want := range map[string]Priority{
		"u=5":                {5, false},
		"i":                  {3, true},
		"u=9, i=?0":          {3, false},
		"u=2;x=1, i=?1, foo": {2, true},
		"":                   {3, false},
	} {
		if got := ParsePriority(in, DefaultPriority); got != want {
			t.Errorf("ParsePriority(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestConnLargeResponseHeadersSplit(t *testing.T) {
	r := newRig(t, Config{})
	r.mustFeed(r.get(1, true))
	big := strings.Repeat("v", 40000)
	if err := r.c.WriteHeaders(1, 200, []Field{{"x-big", big}}, true); err != nil {
		t.Fatal(err)
	}
	r.drain()
	fs := r.frames()
	h := fs[0].(*xhttp2.MetaHeadersFrame)
	if len(h.Fields) != 2 || h.Fields[1].Value != big {
		t.Fatal("big header not reassembled")
	}
}

// TestConnOwnSettingsApplyAtAck checks that a client may use the default 65,535-octet
// stream window until it acknowledges a smaller advertised one (RFC 9113 §6.9.2).
func TestConnOwnSettingsApplyAtAck(t *testing.T) {
	h := newRecorder()
	c := NewConn(Config{InitialStreamWindow: 10}, h)
	r := &rig{t: t, c: c, h: h, read: true}
	r.enc = hpack.NewEncoder(&r.encBuf)
	r.mustFeed(append([]byte(Preface), AppendSettings(nil, false)...))
	r.mustFeed(r.get(1, false))
	r.mustFeed(AppendData(nil, 1, bytes.Repeat([]byte("a"), 1000), false))
	if r.h.resets[1] != 0 || len(r.h.data[1]) != 1000 {
		t.Fatal("DATA within the default window refused before the ACK")
	}
	r.mustFeed(AppendSettings(nil, true))
	r.mustFeed(AppendData(nil, 1, []byte("b"), false))
	if r.h.resets[1] != ErrCodeFlowControl {
		t.Fatal("advertised window not applied at the ACK")
	}
}

// TestConnIdleHoldsNoBuffers checks that after requests of every outcome — answered, with
// a body and trailers, refused, too large, malformed — and a drained output, the Conn keeps
// no buffer but its HPACK tables.
func TestConnIdleHoldsNoBuffers(t *testing.T) {
	r := newRig(t, Config{MaxHeaderListSize: 300, MaxConcurrentStreams: 1})
	r.h.onRequest = func(s *Stream) {
		if s.BodyDone() {
			_ = r.c.WriteHeaders(s.ID, 200, []Field{{"a", "b"}}, false)
			_, _ = r.c.WriteData(s.ID, []byte("x"), true)
		}
	}
	r.mustFeed(r.get(1, true))
	r.mustFeed(r.get(3, false))
	r.mustFeed(r.get(5, true))                                  // refused: stream 3 is open
	r.mustFeed(r.get(7, true, "big", strings.Repeat("v", 400))) // too large
	r.mustFeed(AppendData(nil, 3, []byte("body"), false))
	r.c.Consumed(3, 4)
	r.mustFeed(AppendHeaders(nil, 3, r.block("t", "v"), true, MinMaxFrameSize))
	_ = r.c.WriteHeaders(3, 200, nil, true)
	r.mustFeed(AppendHeaders(nil, 9, r.block(":method", "GET", "a", "b"), true, MinMaxFrameSize)) // malformed
	r.drain()
	c := r.c
	if c.streams != nil || c.out != nil || c.hdrs.fields != nil || c.hdrStream != 0 {
		t.Fatalf("idle Conn holds streams %v out %d fields %d", c.streams, cap(c.out), cap(c.hdrs.fields))
	}
	if len(r.h.requests) != 2 {
		t.Fatalf("%d requests", len(r.h.requests))
	}
}

// TestConnDataAfterServerReset checks that DATA the client sent before it saw the server's
// RST_STREAM is dropped quietly (its octets returned to the connection window), while DATA
// on a stream that ended normally is answered with STREAM_CLOSED.
func TestConnDataAfterServerReset(t *testing.T) {
	r := newRig(t, Config{ConnWindow: InitialWindow})
	r.mustFeed(r.get(1, false))
	r.c.ResetStream(1, ErrCodeCancel)
	r.drain()
	if rstCode(r.frames(), 1) != int(ErrCodeCancel) {
		t.Fatal("no RST_STREAM CANCEL")
	}
	for range 4 {
		r.mustFeed(AppendData(nil, 1, bytes.Repeat([]byte("a"), 10000), false))
	}
	fs := r.frames()
	if rstCode(fs, 1) != -1 || r.c.Glitches() != 0 {
		t.Fatalf("in-flight DATA answered: %v, glitches %d", fs, r.c.Glitches())
	}
	if len(fs) != 1 || fs[0].(*xhttp2.WindowUpdateFrame).Increment != 40000 {
		t.Fatalf("connection window not returned: %v", fs)
	}
	// A stream refused by the server is treated the same way.
	r2 := newRig(t, Config{MaxConcurrentStreams: 1})
	r2.mustFeed(r2.get(1, false))
	r2.mustFeed(r2.get(3, false))
	r2.mustFeed(AppendData(nil, 3, []byte("x"), false))
	if got := rstCode(r2.frames(), 3); got != int(ErrCodeRefusedStream) || r2.c.Glitches() != 1 {
		t.Fatalf("refused stream: rst %d glitches %d", got, r2.c.Glitches())
	}
}

// TestConnEndStreamOnLastData checks that ending a stream right after its last DATA
// frame sets END_STREAM on that frame while it is still unsent, and sends an empty
// END_STREAM frame only when the frame already went out or another frame follows it.
func TestConnEndStreamOnLastData(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(r *rig, id uint32)
		want  []string // DATA frames of stream id: payload, "+" when END_STREAM
	}{
		{"same turn", func(r *rig, id uint32) {
			r.c.WriteData(id, []byte("hello"), false)
			r.c.WriteData(id, nil, true)
		}, []string{"hello+"}},
		{"two pieces", func(r *rig, id uint32) {
			r.c.WriteData(id, []byte("he"), false)
			r.c.WriteData(id, []byte("llo"), false)
			r.c.WriteData(id, nil, true)
		}, []string{"he", "llo+"}},
		{"drained between", func(r *rig, id uint32) {
			r.c.WriteData(id, []byte("hello"), false)
			r.drain()
			r.c.WriteData(id, nil, true)
		}, []string{"hello", "+"}},
		{"drained in part", func(r *rig, id uint32) {
			r.c.WriteData(id, []byte("hello"), false)
			r.out.Write(r.c.Out()[:3]) // part of the frame's header went out
			r.c.Drained(3)
			r.c.WriteData(id, nil, true)
		}, []string{"hello", "+"}},
		{"other frame after", func(r *rig, id uint32) {
			r.c.WriteData(id, []byte("hello"), false)
			r.c.ResetStream(id-2, ErrCodeCancel)
			r.c.WriteData(id, nil, true)
		}, []string{"hello", "+"}},
		{"other stream's data after", func(r *rig, id uint32) {
			r.c.WriteData(id, []byte("hello"), false)
			r.c.WriteData(id-2, []byte("x"), false)
			r.c.WriteData(id, nil, true)
		}, []string{"hello", "+"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			r.read = false
			r.h.onRequest = func(s *Stream) {
				if s.ID == 1 {
					return
				}
				_ = r.c.WriteHeaders(s.ID, 200, nil, false)
				if s.ID == 3 {
					_ = r.c.WriteHeaders(1, 200, nil, false)
					tc.write(r, 3)
				}
			}
			in := append(r.get(1, true), r.get(3, true)...)
			if _, err := r.c.Feed(in); err != nil {
				t.Fatal(err)
			}
			r.drain()
			var got []string
			r.eachFrame(func(f xhttp2.Frame) {
				if d, ok := f.(*xhttp2.DataFrame); ok && d.StreamID == 3 {
					s := string(d.Data())
					if d.StreamEnded() {
						s += "+"
					}
					got = append(got, s)
				}
			})
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("DATA frames of stream 3: %q, want %q", got, tc.want)
			}
			if s := r.c.streams[3]; s != nil {
				t.Fatalf("stream 3 still open: %+v", s)
			}
		})
	}
}
