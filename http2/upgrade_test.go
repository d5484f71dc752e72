package http2

import (
	"encoding/base64"
	"testing"
	"time"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// upgradeRig is a rig whose Conn starts with an h2c upgrade instead of the preface.
func upgradeRig(t *testing.T, settings []byte, req UpgradeRequest) (*rig, *Stream, error) {
	t.Helper()
	r := &rig{t: t, h: newRecorder(), now: time.Unix(1e9, 0), read: true}
	r.c = NewConn(Config{Now: func() time.Time { return r.now }}, r.h)
	r.enc = hpack.NewEncoder(&r.encBuf)
	s, err := r.c.Upgrade(settings, req)
	r.drain()
	return r, s, err
}

// TestUpgradeStreamOne: the upgrade request becomes stream 1, half-closed (remote),
// with its fields; the HTTP2-Settings apply (a larger peer frame size lets a 20,000
// octet DATA frame out whole); the client preface and SETTINGS then follow as on any
// connection, and stream 1's response goes out: its head at once, its DATA once the
// client preface has arrived (curl fails an upgrade when more than 32 KiB follow the
// 101 before it switched to HTTP/2).
func TestUpgradeStreamOne(t *testing.T) {
	raw := AppendSettings(nil, false, Setting{SettingMaxFrameSize, 32768}, Setting{SettingInitialWindowSize, 1 << 20})
	p, err := DecodeUpgradeSettings(base64.RawURLEncoding.EncodeToString(raw[HeaderLen:]))
	if err != nil {
		t.Fatal(err)
	}
	r, s, err := upgradeRig(t, p, UpgradeRequest{Method: "GET", Path: "/a?b", Authority: "example.com",
		Header: []Field{{"accept", "*/*"}, {"content-length", "0"}}})
	if err != nil || s == nil || s.ID != 1 || !s.BodyDone() || s.Method != "GET" || s.Path != "/a?b" ||
		s.Authority != "example.com" || s.Scheme != "http" || len(s.Header) != 2 || s.ContentLength != 0 {
		t.Fatalf("stream %+v, err %v", s, err)
	}
	if len(r.h.requests) != 1 || r.h.requests[0] != s {
		t.Fatalf("OnRequest got %v", r.h.requests)
	}
	if err := r.c.WriteHeaders(1, 200, nil, false); err != nil {
		t.Fatal(err)
	}
	if n, err := r.c.WriteData(1, make([]byte, 20000), true); n != 0 || err != nil {
		t.Fatalf("WriteData before the client preface: %d, %v; want 0", n, err)
	}
	r.drain()
	for _, f := range r.frames() {
		if _, ok := f.(*xhttp2.DataFrame); ok {
			t.Fatal("DATA sent before the client preface")
		}
	}
	in := append([]byte(Preface), AppendSettings(nil, false)...)
	in = AppendSettings(in, true)
	r.mustFeed(in)
	if len(r.h.writable) != 1 || r.h.writable[0] != 1 {
		t.Fatalf("OnWritable after the preface: %v, want stream 1", r.h.writable)
	}
	if n, err := r.c.WriteData(1, make([]byte, 20000), true); n != 20000 || err != nil {
		t.Fatalf("WriteData %d, %v", n, err)
	}
	r.drain()
	var sawData bool
	for _, f := range r.frames() {
		if d, ok := f.(*xhttp2.DataFrame); ok && d.StreamID == 1 && d.Header().Length == 20000 && d.StreamEnded() {
			sawData = true
		}
	}
	if !sawData {
		t.Fatal("no 20,000-octet DATA frame on stream 1")
	}
	// A HEADERS frame on stream 1 again is a closed-stream error; stream 3 is new.
	r.mustFeed(r.get(3, true))
	if len(r.h.requests) != 2 || r.h.requests[1].ID != 3 {
		t.Fatalf("stream 3 not delivered: %d requests", len(r.h.requests))
	}
	if _, err := r.c.Upgrade(p, UpgradeRequest{Method: "GET", Path: "/"}); err == nil {
		t.Fatal("second Upgrade accepted")
	}
}

// TestUpgradeRefusals: bad HTTP2-Settings values fail to decode; a malformed request
// resets stream 1 with PROTOCOL_ERROR and delivers nothing; the client's preface must
// still start with SETTINGS.
func TestUpgradeRefusals(t *testing.T) {
	for _, v := range []string{"!!", "AAMAAA", "AAIAAAAC", "AAUAAAAB"} {
		if _, err := DecodeUpgradeSettings(v); err == nil {
			t.Errorf("DecodeUpgradeSettings(%q) accepted", v)
		}
	}
	if p, err := DecodeUpgradeSettings("AAMAAABkAAQAAP__"); err != nil || len(p) != 12 {
		t.Fatalf("valid value: %v, %d octets", err, len(p))
	}
	if p, err := DecodeUpgradeSettings(""); err != nil || len(p) != 0 {
		t.Fatalf("empty value: %v", err)
	}
	for _, req := range []UpgradeRequest{
		{Method: "GET", Path: "relative"},
		{Method: "GET", Path: "/", Header: []Field{{"content-length", "3"}}},
		{Method: "GET", Path: "/", Header: []Field{{"bad name", "x"}}},
		{Path: "/"},
	} {
		r, s, err := upgradeRig(t, nil, req)
		if err == nil || s != nil || len(r.h.requests) != 0 {
			t.Fatalf("%+v: stream %v, err %v", req, s, err)
		}
		if got := rstCode(r.frames(), 1); got != int(ErrCodeProtocol) {
			t.Fatalf("%+v: RST_STREAM code %d", req, got)
		}
	}
	r, _, _ := upgradeRig(t, nil, UpgradeRequest{Method: "GET", Path: "/"})
	r.frames()
	err := r.feed(append([]byte(Preface), AppendPing(nil, false, [8]byte{})...))
	r.wantConnErr(err, ErrCodeProtocol)
	if !UpgradeHeader("accept", "x") || UpgradeHeader("http2-settings", "x") || UpgradeHeader("te", "gzip") || !UpgradeHeader("te", "trailers") {
		t.Fatal("UpgradeHeader")
	}
}
