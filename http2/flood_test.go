package http2

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestFloodsCutOff sends each flood of CVE-2019-9511…9518, CVE-2023-44487 and
// CVE-2024-27316 and checks that the connection ends with ENHANCE_YOUR_CALM after the
// configured number of frames, and not before.
func TestFloodsCutOff(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		limit int
		frame func(r *rig, i int) []byte
		kind  GlitchKind
	}{
		{"ping", Config{MaxPings: 10}, 10, func(r *rig, i int) []byte { return AppendPing(nil, false, [8]byte{}) }, GlitchPing},
		{"settings", Config{MaxSettings: 10}, 9, // the handshake's SETTINGS counted once already
			func(r *rig, i int) []byte { return AppendSettings(nil, false) }, GlitchSettings},
		{"window-update", Config{MaxSmallWindowUpdates: 10}, 10,
			func(r *rig, i int) []byte { return AppendWindowUpdate(nil, 0, 1) }, GlitchWindowUpdate},
		{"priority", Config{MaxPriorityFrames: 10}, 10,
			func(r *rig, i int) []byte { return AppendPriority(nil, uint32(2*i+101), PriorityParam{Weight: 1}) }, GlitchPriority},
		{"empty-data", Config{MaxEmptyFrames: 10}, 10, func(r *rig, i int) []byte {
			if i == 0 {
				return append(r.get(1, false), AppendData(nil, 1, nil, false)...)
			}
			return AppendData(nil, 1, nil, false)
		}, GlitchEmptyFrames},
		// Frames on streams that have ended are dropped unanswered: they count all the
		// same (they used to be dropped uncounted, without limit).
		{"empty-data-on-reset-stream", Config{MaxEmptyFrames: 10}, 10, func(r *rig, i int) []byte {
			if i == 0 {
				r.mustFeed(r.get(1, false))
				r.c.ResetStream(1, ErrCodeCancel)
			}
			return AppendData(nil, 1, nil, false)
		}, GlitchEmptyFrames},
		{"rst-on-reset-stream", Config{MaxEmptyFrames: 10}, 10, func(r *rig, i int) []byte {
			if i == 0 {
				r.mustFeed(r.get(1, false))
				r.c.ResetStream(1, ErrCodeCancel)
			}
			return AppendRSTStream(nil, 1, ErrCodeCancel)
		}, GlitchEmptyFrames},
		{"rst-on-old-stream", Config{MaxEmptyFrames: 10}, 10, func(r *rig, i int) []byte {
			if i == 0 { // 40 streams answered: stream 1 is no longer among the recently closed
				for id := uint32(1); id < 80; id += 2 {
					r.mustFeed(r.get(id, true))
					if err := r.c.WriteHeaders(id, 204, nil, true); err != nil {
						r.t.Fatal(err)
					}
				}
			}
			return AppendRSTStream(nil, 1, ErrCodeCancel)
		}, GlitchEmptyFrames},
		// So do frames that ask for nothing: unknown types, acknowledgements of nothing
		// the server sent, GOAWAY after GOAWAY.
		{"unknown-frame", Config{MaxEmptyFrames: 10}, 10, func(r *rig, i int) []byte {
			return append(AppendFrameHeader(nil, 1, 0xfa, 0, 0), 'x')
		}, GlitchEmptyFrames},
		{"ping-ack", Config{MaxEmptyFrames: 10}, 10, func(r *rig, i int) []byte {
			return AppendPing(nil, true, [8]byte{})
		}, GlitchEmptyFrames},
		{"settings-ack", Config{MaxEmptyFrames: 10}, 10, func(r *rig, i int) []byte {
			return AppendSettings(nil, true)
		}, GlitchEmptyFrames},
		{"goaway", Config{MaxEmptyFrames: 10}, 10, func(r *rig, i int) []byte {
			if i == 0 { // a stream keeps the connection open; the first GOAWAY is free
				r.mustFeed(append(r.get(1, false), AppendGoAway(nil, 0, ErrCodeNo, nil)...))
			}
			return AppendGoAway(nil, 0, ErrCodeNo, nil)
		}, GlitchEmptyFrames},
		{"rapid-reset", Config{MaxRapidResets: 10}, 10, func(r *rig, i int) []byte {
			id := uint32(2*i + 1)
			return AppendRSTStream(r.get(id, false), id, ErrCodeCancel)
		}, GlitchRapidReset},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.cfg)
			var ctr Counters
			r.c.SetCounters(&ctr)
			for i := range tc.limit {
				if err := r.feed(tc.frame(r, i)); err != nil {
					t.Fatalf("cut off after %d frames, limit %d: %v", i+1, tc.limit, err)
				}
			}
			r.wantConnErr(r.feed(tc.frame(r, tc.limit)), ErrCodeEnhanceYourCalm)
			if r.c.Glitches() == 0 {
				t.Fatal("no glitch counted")
			}
			for k := range NumGlitchKinds {
				if got, want := ctr.Glitches[k].Load(), uint64(0); k == tc.kind && got != 1 || k != tc.kind && got != want {
					t.Errorf("Counters.Glitches[%v] = %d after the %s flood", k, got, tc.name)
				}
			}
			if got := ctr.GoAwaysSent[ErrCodeEnhanceYourCalm].Load(); got != 1 {
				t.Errorf("GOAWAY ENHANCE_YOUR_CALM counted %d times, want 1", got)
			}
			// A new window starts the count again.
			r2 := newRig(t, tc.cfg)
			for i := range 2 * tc.limit {
				if i == tc.limit {
					r2.now = r2.now.Add(DefaultFloodWindow)
				}
				if err := r2.feed(tc.frame(r2, i)); err != nil {
					t.Fatalf("frame %d over two windows: %v", i, err)
				}
			}
		})
	}
}

// TestSmallWindowUpdatesReturningData checks that a client with small windows, which
// returns each DATA frame's window in a WINDOW_UPDATE of its own for the stream and the
// connection (nghttp -w 10 -W 12), is not taken for a WINDOW_UPDATE flood, while small
// updates that return nothing are still cut off at MaxSmallWindowUpdates.
func TestSmallWindowUpdatesReturningData(t *testing.T) {
	r := newRig(t, Config{MaxSmallWindowUpdates: 10})
	r.h.onRequest = func(s *Stream) { _ = r.c.WriteHeaders(s.ID, 200, nil, false) }
	r.mustFeed(r.get(1, true))
	chunk := bytes.Repeat([]byte{'x'}, 512)
	for i := range 100 {
		if n, err := r.c.WriteData(1, chunk, false); err != nil || n != len(chunk) {
			t.Fatalf("WriteData %d: %d, %v", i, n, err)
		}
		r.drain()
		in := AppendWindowUpdate(AppendWindowUpdate(nil, 1, 512), 0, 512)
		if err := r.feed(in); err != nil {
			t.Fatalf("WINDOW_UPDATEs returning DATA frame %d taken for a flood: %v", i+1, err)
		}
	}
	for i := range 10 {
		if err := r.feed(AppendWindowUpdate(nil, 0, 1)); err != nil {
			t.Fatalf("unprompted small update %d cut off early: %v", i+1, err)
		}
	}
	r.wantConnErr(r.feed(AppendWindowUpdate(nil, 0, 1)), ErrCodeEnhanceYourCalm)
}

func TestRapidResetCountsOnlyEarlyResets(t *testing.T) {
	r := newRig(t, Config{MaxRapidResets: 2})
	r.h.onRequest = func(s *Stream) { _ = r.c.WriteHeaders(s.ID, 200, nil, true) }
	for i := range 10 {
		id := uint32(2*i + 1)
		// The response is complete before the reset, which comes in a later read: not a
		// rapid reset.
		r.mustFeed(r.get(id, false))
		if err := r.feed(AppendRSTStream(nil, id, ErrCodeCancel)); err != nil {
			t.Fatalf("reset after the response counted: %v", err)
		}
	}
}

func TestContinuationFlood(t *testing.T) {
	r := newRig(t, Config{MaxContinuationFrames: 5})
	b := r.block(":method", "GET", ":scheme", "http", ":path", "/", "a", "b")
	in := append(AppendFrameHeader(nil, 1, FrameHeaders, 0, 1), b[0])
	for _, c := range b[1:6] {
		in = append(AppendFrameHeader(in, 1, FrameContinuation, 0, 1), c)
	}
	if err := r.feed(in); err != nil { // exactly 5 CONTINUATION frames so far
		t.Fatal(err)
	}
	r.wantConnErr(r.feed(append(AppendFrameHeader(nil, 1, FrameContinuation, 0, 1), b[6])), ErrCodeEnhanceYourCalm)

	// The encoded block size is capped too, whatever the frame count.
	r = newRig(t, Config{MaxHeaderBlockBytes: 1000})
	junk := bytes.Repeat([]byte{0x82}, 900)
	if err := r.feed(append(AppendFrameHeader(nil, 900, FrameHeaders, 0, 1), junk...)); err != nil {
		t.Fatal(err)
	}
	r.wantConnErr(r.feed(append(AppendFrameHeader(nil, 200, FrameContinuation, 0, 1), junk[:200]...)), ErrCodeEnhanceYourCalm)
}

func TestHeaderListLimit(t *testing.T) {
	r := newRig(t, Config{MaxHeaderListSize: 209})
	// Each field costs its length plus 32: the four pseudo-headers take 166, one more 43.
	small := r.get(1, true, "a", strings.Repeat("x", 10))
	r.mustFeed(small)
	if len(r.h.requests) != 1 {
		t.Fatal("small request refused")
	}
	r.frames()
	// An HPACK bomb: one dynamic-table entry referenced again and again.
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	_ = enc.WriteField(hpack.HeaderField{Name: "bomb", Value: strings.Repeat("b", 100)})
	for range 50 {
		_ = enc.WriteField(hpack.HeaderField{Name: "bomb", Value: strings.Repeat("b", 100)})
	}
	if blk.Len() > 200 {
		t.Fatalf("bomb block is %d octets, meant to be small", blk.Len())
	}
	r2 := newRig(t, Config{MaxHeaderListSize: 209})
	r2.mustFeed(AppendHeaders(nil, 1, blk.Bytes(), false, MinMaxFrameSize))
	fs := r2.frames()
	h, ok := fs[0].(*xhttp2.MetaHeadersFrame)
	if !ok || h.PseudoValue("status") != "431" || rstCode(fs, 1) != int(ErrCodeNo) || len(r2.h.requests) != 0 {
		t.Fatalf("oversized header list answered with %v", fs)
	}
	if r2.c.Glitches() != 1 {
		t.Fatalf("glitches %d", r2.c.Glitches())
	}
	// HPACK state stays in sync: the next request decodes.
	r2.mustFeed(r2.get(3, true))
	if len(r2.h.requests) != 1 || r2.h.requests[0].Authority != "x" {
		t.Fatal("request after the bomb not decoded")
	}
	// One octet over the limit is refused the same way.
	r.mustFeed(r.get(3, true, "a", strings.Repeat("x", 11)))
	if len(r.h.requests) != 1 || !r.refused(431) {
		t.Fatal("header list one octet over the limit accepted")
	}
}

func TestHeaderStringLimit(t *testing.T) {
	r := newRig(t, Config{MaxHeaderStringLength: 100})
	r.wantConnErr(r.feed(r.get(1, true, "a", strings.Repeat("x", 101))), ErrCodeCompression)
}

// TestLongFieldWithinListSize: with the defaults, a 30 KB cookie (longer than the
// 16 KiB string limit gale had, which ended the whole connection with
// COMPRESSION_ERROR, while HTTP/1.1 serves it) is delivered; a 60 KB one that makes
// the section larger than MaxHeaderListSize is answered 431 and the connection,
// HPACK in sync, serves the next request.
func TestLongFieldWithinListSize(t *testing.T) {
	r := newRig(t, Config{})
	r.mustFeed(r.get(1, true, "cookie", strings.Repeat("c", 30000)))
	if len(r.h.requests) != 1 || len(r.h.requests[0].Header) != 1 || len(r.h.requests[0].Header[0].Value) != 30000 {
		t.Fatal("request with a 30 KB cookie not delivered whole")
	}
	r.frames()
	r.mustFeed(r.get(3, true, "cookie", strings.Repeat("c", 60000), "x-more", strings.Repeat("m", 6000)))
	if len(r.h.requests) != 1 || !r.refused(431) {
		t.Fatal("section past MaxHeaderListSize not answered 431")
	}
	r.mustFeed(r.get(5, true, "cookie", "a=b"))
	if len(r.h.requests) != 2 || r.h.requests[1].Header[0].Value != "a=b" {
		t.Fatal("request after the 431 lost")
	}
}

func TestMaxConcurrentStreams(t *testing.T) {
	r := newRig(t, Config{MaxConcurrentStreams: 3})
	for i := range 3 {
		r.mustFeed(r.get(uint32(2*i+1), false))
	}
	r.frames()
	r.mustFeed(r.get(7, false))
	if rstCode(r.frames(), 7) != int(ErrCodeRefusedStream) || len(r.h.requests) != 3 || r.c.Glitches() != 1 {
		t.Fatalf("fourth stream not refused (requests %d)", len(r.h.requests))
	}
	// Once a stream ends another may open, and HPACK stayed in sync through the refusal.
	r.mustFeed(AppendRSTStream(nil, 1, ErrCodeCancel))
	r.mustFeed(r.get(9, false))
	if len(r.h.requests) != 4 || r.h.requests[3].Path != "/" {
		t.Fatal("stream after a refusal lost")
	}
}

func TestControlOutputCapped(t *testing.T) {
	r := newRig(t, Config{MaxControlBuffered: 1000, MaxOutputBuffered: 1000, MaxPings: 1 << 20})
	r.read = false // a peer that never reads
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = r.feed(AppendPing(nil, false, [8]byte{}))
	}
	if ce, ok := err.(*ConnError); !ok || ce.Code != ErrCodeEnhanceYourCalm {
		t.Fatalf("error %v", err)
	}
	if n := len(r.c.Out()); n > 2000+100 {
		t.Fatalf("output grew to %d octets", n)
	}
}

func TestGlitchLimit(t *testing.T) {
	r := newRig(t, Config{MaxGlitches: 3})
	bad := r.block(":method", "GET")
	var err error
	for i := 0; i < 4 && err == nil; i++ {
		err = r.feed(AppendHeaders(nil, uint32(2*i+1), bad, true, MinMaxFrameSize))
	}
	r.wantConnErr(err, ErrCodeEnhanceYourCalm)
	if r.c.Glitches() != 4 {
		t.Fatalf("glitches %d", r.c.Glitches())
	}
}

// TestGlitchesPerWindow: MaxGlitches counts within a FloodWindow, so a long-lived
// connection that sees a few malformed requests in every window (a load balancer
// multiplexing many clients) is not cut off once their sum over its life passes the
// cap, as it used to be; a burst past the cap within one window still is.
func TestGlitchesPerWindow(t *testing.T) {
	r := newRig(t, Config{MaxGlitches: 3})
	bad := r.block(":method", "GET")
	id := uint32(1)
	for range 5 { // 15 glitches over five windows
		for range 3 {
			r.mustFeed(AppendHeaders(nil, id, bad, true, MinMaxFrameSize))
			id += 2
		}
		r.now = r.now.Add(DefaultFloodWindow)
	}
	r.mustFeed(r.get(id, true))
	if len(r.h.requests) != 1 || r.c.Glitches() != 15 {
		t.Fatalf("after 15 glitches in five windows: %d requests, %d glitches", len(r.h.requests), r.c.Glitches())
	}
	var err error
	for i := 0; i < 4 && err == nil; i++ {
		id += 2
		err = r.feed(AppendHeaders(nil, id, bad, true, MinMaxFrameSize))
	}
	r.wantConnErr(err, ErrCodeEnhanceYourCalm)
}

func TestOutputCapBlocksData(t *testing.T) {
	r := newRig(t, Config{MaxOutputBuffered: 20000})
	r.read = false
	r.mustFeed(AppendSettings(nil, false, Setting{SettingInitialWindowSize, MaxWindow}))
	r.mustFeed(AppendWindowUpdate(nil, 0, MaxWindow-InitialWindow))
	r.mustFeed(r.get(1, true))
	_ = r.c.WriteHeaders(1, 200, nil, false)
	n, _ := r.c.WriteData(1, make([]byte, 100000), true)
	if n >= 100000 || len(r.c.Out()) > 20000+2*MinMaxFrameSize {
		t.Fatalf("took %d, output %d", n, len(r.c.Out()))
	}
	r.drain()
	if len(r.h.writable) != 1 {
		t.Fatal("no OnWritable after the output drained")
	}
	_ = time.Second
}

// TestRapidResetOfAnsweredStreams: a server that answers inline has completed (and
// forgotten) each stream before the RST_STREAM sent right behind its HEADERS arrives;
// those resets of just-closed streams count as rapid resets too, so the attack still
// ends with ENHANCE_YOUR_CALM at the limit.
func TestRapidResetOfAnsweredStreams(t *testing.T) {
	r := newRig(t, Config{MaxRapidResets: 5})
	r.h.onRequest = func(s *Stream) { _ = r.c.WriteHeaders(s.ID, 200, nil, true) }
	var err error
	n := 0
	for ; n < 100 && err == nil; n++ {
		id := uint32(2*n + 1)
		err = r.feed(AppendRSTStream(r.get(id, true), id, ErrCodeCancel))
	}
	r.wantConnErr(err, ErrCodeEnhanceYourCalm)
	if n != 6 {
		t.Fatalf("cut off after %d pairs, want 6 (limit 5)", n)
	}
}

// TestHeaderSectionHTTP1Limits: MaxHeaderBytes and MaxHeaderFields measure a section
// as HTTP/1.1 measures the same request's header section (a field line each, a split
// cookie as one line), and MaxRequestLine :method and :path as the request line they
// make, so the configured limits.header_bytes, limits.header_fields and
// TestRefusalWithoutWindow: a 431 for a client whose stream window is 0 goes as the
// head alone, ending the stream, since its body could not go at once.
func TestRefusalWithoutWindow(t *testing.T) {
	r := newRig(t, Config{MaxHeaderFields: 1})
	r.mustFeed(AppendSettings(nil, false, Setting{SettingInitialWindowSize, 0}))
	r.frames()
	r.mustFeed(r.get(1, true, "a", "1", "b", "2"))
	fs := r.frames()
	h, ok := fs[0].(*xhttp2.MetaHeadersFrame)
	if len(fs) != 1 || !ok || h.PseudoValue("status") != "431" || !h.StreamEnded() || headerValue(h, "content-length") != "" {
		t.Fatalf("431 with a zero window: %v", fs)
	}
}

// limits.request_line give the same answer, 431 or 414, over both protocols; the
// HTTP/2 side used to know only its own 64 KiB list size, no field count and no
// request line. The advertised SETTINGS_MAX_HEADER_LIST_SIZE follows them.
func TestHeaderSectionHTTP1Limits(t *testing.T) {
	fields := func(n int, name string) []string {
		var f []string
		for i := range n {
			f = append(f, name+strconv.Itoa(i%10), "v")
		}
		return f
	}
	// Field count: 5 pass, 6 are refused; cookie crumbs count as one field.
	r := newRig(t, Config{MaxHeaderFields: 5})
	r.mustFeed(r.get(1, true, fields(5, "x-")...))
	if len(r.h.requests) != 1 {
		t.Fatal("section at MaxHeaderFields refused")
	}
	r.frames()
	r.mustFeed(r.get(3, true, fields(6, "y-")...))
	if len(r.h.requests) != 1 || !r.refused(431) {
		t.Fatal("section past MaxHeaderFields not answered 431")
	}
	r.mustFeed(r.get(5, true, append(fields(4, "z-"), "cookie", "a=1", "cookie", "b=2", "cookie", "c=3")...))
	if len(r.h.requests) != 2 {
		t.Fatal("split cookie counted as several fields")
	}
	r.frames()
	// Field bytes, HTTP/1.1's way: "a: " + value + CRLF is len(value)+5; pseudo-header
	// fields are not counted (the request line has its own limit on HTTP/1.1).
	r = newRig(t, Config{MaxHeaderBytes: 100})
	r.mustFeed(r.get(1, true, "a", strings.Repeat("x", 95)))
	if len(r.h.requests) != 1 {
		t.Fatal("section at MaxHeaderBytes refused")
	}
	r.frames()
	r.mustFeed(r.get(3, true, "a", strings.Repeat("x", 96)))
	if len(r.h.requests) != 1 || !r.refused(431) {
		t.Fatal("section past MaxHeaderBytes not answered 431")
	}
	// "cookie: a=1; b=2" is 16+2 octets on HTTP/1.1.
	r.mustFeed(r.get(5, true, "a", strings.Repeat("x", 95-18), "cookie", "a=1", "cookie", "b=2"))
	if len(r.h.requests) != 2 {
		t.Fatal("split cookie counted as several lines")
	}
	r.frames()
	// The request line, HTTP/1.1's way: "GET " + path + " HTTP/1.1", 414 past it.
	r = newRig(t, Config{MaxRequestLine: 100})
	path := "/" + strings.Repeat("p", 100-10-3-1)
	r.mustFeed(AppendHeaders(nil, 1, r.block(":method", "GET", ":scheme", "http", ":path", path, ":authority", "x"), true, MinMaxFrameSize))
	if len(r.h.requests) != 1 {
		t.Fatal("request line at MaxRequestLine refused")
	}
	r.frames()
	r.mustFeed(AppendHeaders(nil, 3, r.block(":method", "GET", ":scheme", "http", ":path", path+"p", ":authority", "x"), true, MinMaxFrameSize))
	if len(r.h.requests) != 1 || !r.refused(414) {
		t.Fatal("request line past MaxRequestLine not answered 414")
	}
	r.mustFeed(r.get(5, true))
	if len(r.h.requests) != 2 {
		t.Fatal("request after the 414 lost")
	}
	// The advertised list size covers every section within both limits.
	for _, tc := range []struct {
		cfg  Config
		want uint32
	}{
		{Config{}, 76688},
		{Config{MaxHeaderBytes: 1000, MaxHeaderFields: 10}, 1000 + 280 + 8192 + 160},
		{Config{MaxHeaderBytes: 1000, MaxHeaderFields: 10, MaxRequestLine: 1000}, 1000 + 280 + 1000 + 160},
		{Config{MaxHeaderBytes: 1000, MaxHeaderListSize: 4000}, 4000},
	} {
		c := NewConn(tc.cfg, newRecorder())
		f, _, err := ReadFrame(c.Out(), MinMaxFrameSize)
		if err != nil || f.Type != FrameSettings {
			t.Fatalf("server preface: %v %v", f, err)
		}
		var got uint32
		for i := range f.NumSettings() {
			if st := f.Setting(i); st.ID == SettingMaxHeaderListSize {
				got = st.Val
			}
		}
		if got != tc.want {
			t.Errorf("%+v: SETTINGS_MAX_HEADER_LIST_SIZE %d, want %d", tc.cfg, got, tc.want)
		}
	}
}
