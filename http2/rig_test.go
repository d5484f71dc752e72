package http2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/http1"
	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// recorder is a Handler that records every event and lets a test hook responses in.
type recorder struct {
	requests []*Stream
	data     map[uint32][]byte
	ended    map[uint32]bool
	trailers map[uint32][]Field
	resets   map[uint32]ErrCode
	writable []uint32
	goaway   []ErrCode

	onRequest  func(s *Stream)
	onData     func(s *Stream, p []byte, end bool)
	onWritable func(s *Stream)
}

func newRecorder() *recorder {
	return &recorder{data: map[uint32][]byte{}, ended: map[uint32]bool{}, trailers: map[uint32][]Field{},
		resets: map[uint32]ErrCode{}}
}

func (r *recorder) OnRequest(s *Stream) {
	r.requests = append(r.requests, s)
	if s.BodyDone() {
		r.ended[s.ID] = true
	}
	if r.onRequest != nil {
		r.onRequest(s)
	}
}

func (r *recorder) OnData(s *Stream, p []byte, end bool) {
	r.data[s.ID] = append(r.data[s.ID], p...)
	if end {
		r.ended[s.ID] = true
	}
	if r.onData != nil {
		r.onData(s, p, end)
	}
}

func (r *recorder) OnTrailers(s *Stream, tr []Field) {
	r.trailers[s.ID] = tr
	r.ended[s.ID] = true
}

func (r *recorder) OnStreamReset(s *Stream, code ErrCode, byPeer bool) { r.resets[s.ID] = code }

func (r *recorder) OnWritable(s *Stream) {
	r.writable = append(r.writable, s.ID)
	if r.onWritable != nil {
		r.onWritable(s)
	}
}

func (r *recorder) OnGoAway(code ErrCode, debug []byte) { r.goaway = append(r.goaway, code) }

var _ Handler = (*recorder)(nil)

// rig drives a Conn with frames a test builds, and reads the server's output back with
// x/net's Framer, an implementation written by other people.
type rig struct {
	t      *testing.T
	c      *Conn
	h      *recorder
	enc    *hpack.Encoder
	encBuf bytes.Buffer
	out    bytes.Buffer // server output not yet parsed
	now    time.Time
	read   bool // drain the Conn's output after every feed
	dec    *hpack.Decoder
}

// decoder returns the HPACK decoder of the server's output, which keeps the dynamic
// table across calls of frames and eachFrame.
func (r *rig) decoder() *hpack.Decoder {
	if r.dec == nil {
		r.dec = hpack.NewDecoder(4096, nil)
	}
	return r.dec
}

// newRig starts a connection with cfg and completes the preface and SETTINGS exchange.
func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := &rig{t: t, h: newRecorder(), now: time.Unix(1e9, 0), read: true}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return r.now }
	}
	r.c = NewConn(cfg, r.h)
	r.enc = hpack.NewEncoder(&r.encBuf)
	in := append([]byte(Preface), AppendSettings(nil, false)...)
	in = AppendSettings(in, true)
	r.mustFeed(in)
	fs := r.frames()
	if len(fs) < 2 {
		t.Fatalf("server preface: %d frames", len(fs))
	}
	if _, ok := fs[0].(*xhttp2.SettingsFrame); !ok {
		t.Fatalf("first server frame is %T", fs[0])
	}
	return r
}

// feed gives b to the Conn in one call and collects the output.
func (r *rig) feed(b []byte) error {
	n, err := r.c.Feed(b)
	if err == nil && n != len(b) {
		r.t.Fatalf("Feed consumed %d of %d", n, len(b))
	}
	if r.read {
		r.drain()
	}
	return err
}

func (r *rig) drain() {
	out := r.c.Out()
	r.out.Write(out)
	r.c.Drained(len(out))
}

func (r *rig) mustFeed(b []byte) {
	r.t.Helper()
	if err := r.feed(b); err != nil {
		r.t.Fatalf("Feed: %v", err)
	}
}

// serveBody answers each request with 200 and body, resumed on every OnWritable, and
// returns the count of body octets the Conn has taken.
func (r *rig) serveBody(body []byte) *int {
	sent := new(int)
	resume := func(s *Stream) {
		n, err := r.c.WriteData(s.ID, body[*sent:], true)
		if err != nil {
			r.t.Fatal(err)
		}
		*sent += n
	}
	r.h.onRequest = func(s *Stream) {
		_ = r.c.WriteHeaders(s.ID, 200, nil, false)
		resume(s)
	}
	r.h.onWritable = resume
	return sent
}

// eachFrame parses the output collected so far and hands each frame to f while its
// payload is valid (the Framer reuses it for the next frame), then discards the output.
func (r *rig) eachFrame(f func(xhttp2.Frame)) {
	r.t.Helper()
	fr := xhttp2.NewFramer(io.Discard, bytes.NewReader(r.out.Bytes()))
	fr.ReadMetaHeaders = r.decoder()
	fr.MaxHeaderListSize = 1 << 20
	for {
		fm, err := fr.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.t.Fatalf("server output does not parse: %v", err)
		}
		f(fm)
	}
	r.out.Reset()
}

// refused reports whether the output collected so far is the answer to a request
// refused with status 431 or 414: HEADERS with the status, content-type and
// content-length, then a DATA frame with END_STREAM carrying the text gale's
// HTTP/1.1 answer has, and nothing else but a RST_STREAM NO_ERROR.
func (r *rig) refused(status int) bool {
	r.t.Helper()
	text := http1.StatusText(status) + ": header section too large\n"
	if status == 414 {
		text = http1.StatusText(status) + ": request line too long\n"
	}
	var got []string
	r.eachFrame(func(f xhttp2.Frame) {
		switch f := f.(type) {
		case *xhttp2.MetaHeadersFrame:
			got = append(got, fmt.Sprintf("HEADERS %s %s %s end=%v", f.PseudoValue("status"),
				headerValue(f, "content-type"), headerValue(f, "content-length"), f.StreamEnded()))
		case *xhttp2.DataFrame:
			got = append(got, fmt.Sprintf("DATA %q end=%v", f.Data(), f.StreamEnded()))
		case *xhttp2.RSTStreamFrame:
			if f.ErrCode != xhttp2.ErrCodeNo {
				got = append(got, "RST_STREAM "+f.ErrCode.String())
			}
		default:
			got = append(got, fmt.Sprintf("%T", f))
		}
	})
	want := []string{fmt.Sprintf("HEADERS %d text/plain; charset=utf-8 %d end=false", status, len(text)),
		fmt.Sprintf("DATA %q end=true", text)}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		r.t.Logf("refusal:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		return false
	}
	return true
}

// headerValue returns the value of the regular field name in f.
func headerValue(f *xhttp2.MetaHeadersFrame, name string) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

// frames parses the output collected so far.
func (r *rig) frames() []xhttp2.Frame {
	r.t.Helper()
	fr := xhttp2.NewFramer(io.Discard, bytes.NewReader(r.out.Bytes()))
	fr.ReadMetaHeaders = r.decoder()
	fr.MaxHeaderListSize = 1 << 20
	var fs []xhttp2.Frame
	for {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.t.Fatalf("server output does not parse: %v", err)
		}
		fs = append(fs, f)
	}
	r.out.Reset()
	return fs
}

// block HPACK-encodes fields.
func (r *rig) block(fields ...string) []byte {
	r.encBuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		_ = r.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(r.encBuf.Bytes())
}

// get returns a complete GET request on stream id.
func (r *rig) get(id uint32, end bool, extra ...string) []byte {
	f := append([]string{":method", "GET", ":scheme", "http", ":path", "/", ":authority", "x"}, extra...)
	return AppendHeaders(nil, id, r.block(f...), end, MinMaxFrameSize)
}

// goAwayCode returns the code of the GOAWAY in fs, or -1.
func goAwayCode(fs []xhttp2.Frame) int {
	for _, f := range fs {
		if g, ok := f.(*xhttp2.GoAwayFrame); ok {
			return int(g.ErrCode)
		}
	}
	return -1
}

// rstCode returns the code of the RST_STREAM for id in fs, or -1.
func rstCode(fs []xhttp2.Frame, id uint32) int {
	for _, f := range fs {
		if g, ok := f.(*xhttp2.RSTStreamFrame); ok && g.StreamID == id {
			return int(g.ErrCode)
		}
	}
	return -1
}

// wantConnErr checks that err is a connection error with code and that GOAWAY went out.
func (r *rig) wantConnErr(err error, code ErrCode) {
	r.t.Helper()
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Code != code {
		r.t.Fatalf("error %v, want connection error %v", err, code)
	}
	if got := goAwayCode(r.frames()); got != int(code) {
		r.t.Fatalf("GOAWAY code %d, want %v", got, code)
	}
}
