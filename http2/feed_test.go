package http2

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// logHandler records events as text and answers every request at once, so that two runs
// over the same input can be compared.
type logHandler struct {
	c   *Conn
	log strings.Builder
}

func (h *logHandler) OnRequest(s *Stream) {
	fmt.Fprintf(&h.log, "req %d %s %s %s %v %v\n", s.ID, s.Method, s.Path, s.Authority, s.Header, s.Priority)
	_ = h.c.WriteHeaders(s.ID, 200, []Field{{"x-id", fmt.Sprint(s.ID)}}, false)
	_, _ = h.c.WriteData(s.ID, []byte("body"), s.BodyDone())
}

func (h *logHandler) OnData(s *Stream, p []byte, end bool) {
	fmt.Fprintf(&h.log, "data %d %q %v\n", s.ID, p, end)
	h.c.Consumed(s.ID, len(p))
	if end && !s.ResponseDone() {
		_, _ = h.c.WriteData(s.ID, nil, true)
	}
}

func (h *logHandler) OnTrailers(s *Stream, tr []Field) {
	fmt.Fprintf(&h.log, "trailers %d %v\n", s.ID, tr)
	_ = h.c.WriteTrailers(s.ID, tr)
}

func (h *logHandler) OnStreamReset(s *Stream, code ErrCode, byPeer bool) {
	fmt.Fprintf(&h.log, "reset %d %v %v\n", s.ID, code, byPeer)
}

func (h *logHandler) OnWritable(s *Stream) { fmt.Fprintf(&h.log, "writable %d\n", s.ID) }

func (h *logHandler) OnGoAway(code ErrCode, debug []byte) {
	fmt.Fprintf(&h.log, "goaway %v %q\n", code, debug)
}

var _ Handler = (*logHandler)(nil)

// clientSession returns the bytes of a client session using every frame type.
func clientSession() []byte {
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	block := func(fields ...string) []byte {
		blk.Reset()
		for i := 0; i < len(fields); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return bytes.Clone(blk.Bytes())
	}
	b := []byte(Preface)
	b = AppendSettings(b, false, Setting{SettingInitialWindowSize, 100000}, Setting{SettingHeaderTableSize, 1024})
	b = AppendSettings(b, true)
	b = AppendHeaders(b, 1, block(":method", "GET", ":scheme", "https", ":path", "/a", ":authority", "h", "priority", "u=0"), true, MinMaxFrameSize)
	post := block(":method", "POST", ":scheme", "https", ":path", "/b", ":authority", "h", "content-length", "10", "x-long", strings.Repeat("z", 300))
	b = append(AppendFrameHeader(b, 100, FrameHeaders, 0, 3), post[:100]...)
	b = append(AppendFrameHeader(b, uint32(len(post)-100), FrameContinuation, FlagEndHeaders, 3), post[100:]...)
	b = AppendPriority(b, 3, PriorityParam{StreamDep: 1, Weight: 3})
	b = append(AppendFrameHeader(b, 8, FrameData, FlagPadded, 3), 2, 'h', 'e', 'l', 'l', 'o', 0, 0)
	b = AppendWindowUpdate(b, 0, 5000)
	b = AppendWindowUpdate(b, 3, 5000)
	b = AppendPing(b, false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	b = append(AppendFrameHeader(b, 2, 0xbb, 0, 3), 'x', 'y') // unknown type, ignored
	b = AppendData(b, 3, []byte("world"), false)
	b = AppendHeaders(b, 3, block("x-trailer", "t"), true, MinMaxFrameSize)
	b = AppendHeaders(b, 5, block(":method", "GET", ":scheme", "https", ":path", "/c", ":authority", "h"), false, MinMaxFrameSize)
	b = AppendRSTStream(b, 5, ErrCodeCancel)
	b = AppendHeaders(b, 7, block(":method", "GET", ":scheme", "https", ":path", "/d", ":authority", "h"), false, MinMaxFrameSize)
	b = AppendData(b, 7, nil, true)
	b = AppendGoAway(b, 0, ErrCodeNo, []byte("done"))
	return b
}

// runSession feeds in to a fresh Conn in chunks of size chunk (0: all at once) and returns
// the event log and the whole output.
func runSession(t *testing.T, in []byte, chunk int) (string, []byte) {
	h := &logHandler{}
	h.c = NewConn(Config{}, h)
	var out, pending []byte
	if chunk == 0 {
		chunk = len(in)
	}
	for off := 0; off < len(in); off += chunk {
		pending = append(pending, in[off:min(off+chunk, len(in))]...)
		n, err := h.c.Feed(pending)
		if err != nil {
			t.Fatalf("chunk %d at %d: %v", chunk, off, err)
		}
		pending = pending[n:]
		out = append(out, h.c.Out()...)
		h.c.Drained(len(h.c.Out()))
	}
	if len(pending) != 0 {
		t.Fatalf("chunk %d: %d octets left over", chunk, len(pending))
	}
	return h.log.String(), out
}

// TestConnFeedSplit feeds a whole session at once, split at every byte, and one byte at a
// time; events and output must not depend on how the input was cut. A request without a
// body reaches OnRequest when the Feed that completed it returns, so where it falls among
// other streams' events (and their output) depends on the cut; the events and frames of
// each stream, and those of the connection, must not.
func TestConnFeedSplit(t *testing.T) {
	in := clientSession()
	wantLog, wantOut := runSession(t, in, 0)
	for _, line := range []string{"req 1 GET /a h [{priority u=0}] {0 false}", "data 3 \"hello\" false", "data 3 \"world\" false",
		"trailers 3 [{x-trailer t}]", "reset 5 CANCEL true", "data 7 \"\" true", "goaway NO_ERROR \"done\""} {
		if !strings.Contains(wantLog, line) {
			t.Fatalf("log lacks %q:\n%s", line, wantLog)
		}
	}
	want, wantFrames := logByStream(wantLog), framesByStream(t, wantOut)
	for chunk := 1; chunk < len(in); chunk++ {
		log, out := runSession(t, in, chunk)
		if got := logByStream(log); got != want {
			t.Fatalf("chunk %d: log\n%s\nwant\n%s", chunk, got, want)
		}
		if got := framesByStream(t, out); got != wantFrames {
			t.Fatalf("chunk %d: output\n%s\nwant\n%s", chunk, got, wantFrames)
		}
	}
	// Split at every byte into exactly two pieces.
	for cut := 1; cut < len(in); cut++ {
		h := &logHandler{}
		h.c = NewConn(Config{}, h)
		n, err := h.c.Feed(in[:cut])
		if err != nil {
			t.Fatal(err)
		}
		if n2, err := h.c.Feed(in[n:]); err != nil || n+n2 != len(in) {
			t.Fatalf("cut %d: %d+%d of %d, %v", cut, n, n2, len(in), err)
		}
		if logByStream(h.log.String()) != want {
			t.Fatalf("cut %d: log differs", cut)
		}
	}
}

// logByStream regroups an event log by stream (the second word of a line; connection
// events under "conn"), keeping each group's order.
func logByStream(log string) string {
	groups := map[string][]string{}
	var keys []string
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		k := "conn"
		if f := strings.Fields(line); len(f) > 1 && f[0] != "goaway" {
			k = f[1]
		}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], line)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(groups[k], " | "))
	}
	return b.String()
}

// framesByStream decodes the server's output (HPACK included) and lists each stream's
// frames, and the connection's, in order.
func framesByStream(t *testing.T, out []byte) string {
	t.Helper()
	fr := xhttp2.NewFramer(io.Discard, bytes.NewReader(out))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	groups := map[uint32][]string{}
	var ids []uint32
	for {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("output does not parse: %v", err)
		}
		h := f.Header()
		desc := fmt.Sprintf("%v/%v", h.Type, h.Flags)
		switch f := f.(type) {
		case *xhttp2.MetaHeadersFrame:
			desc += fmt.Sprint(f.Fields)
		case *xhttp2.DataFrame:
			desc += fmt.Sprintf("%q", f.Data())
		case *xhttp2.RSTStreamFrame:
			desc += f.ErrCode.String()
		case *xhttp2.GoAwayFrame:
			desc += fmt.Sprintf("%d,%v", f.LastStreamID, f.ErrCode)
		}
		if _, ok := groups[h.StreamID]; !ok {
			ids = append(ids, h.StreamID)
		}
		g := groups[h.StreamID]
		if d, ok := f.(*xhttp2.DataFrame); ok && len(d.Data()) == 0 && d.StreamEnded() && len(g) > 0 &&
			strings.HasPrefix(g[len(g)-1], "DATA/0") {
			// Whether END_STREAM rides on the last DATA frame or follows in an empty one
			// depends on whether that frame was still unsent when the stream ended, that
			// is on where the input was cut: the two say the same.
			g[len(g)-1] = "DATA/1" + strings.TrimPrefix(g[len(g)-1], "DATA/0")
			continue
		}
		groups[h.StreamID] = append(g, desc)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%d: %s\n", id, strings.Join(groups[id], " | "))
	}
	return b.String()
}
