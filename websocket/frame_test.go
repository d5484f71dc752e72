package websocket

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

var server = Reader{Role: RoleServer}

type frameCase struct {
	name   string
	r      Reader
	in     []byte
	frames []string // expected payloads, in order ("" entries are frames with no payload)
	code   uint16   // expected error close code, 0 for none
}

func runFrameCases(t *testing.T, cases []frameCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := allWays(t, c.r, c.in)
			if o.code != c.code {
				t.Fatalf("code %d, want %d (%v)", o.code, c.code, o)
			}
			if len(o.frames) != len(c.frames) {
				t.Fatalf("frames %q, want payloads %q", o.frames, c.frames)
			}
			for i, p := range c.frames {
				if !strings.Contains(o.frames[i], "payload="+strconv.Quote(p)+" ") {
					t.Fatalf("frame %d %q, want payload %q", i, o.frames[i], p)
				}
			}
		})
	}
}

func TestReadFrameRFCExamples(t *testing.T) {
	// RFC 6455 §5.7.
	runFrameCases(t, []frameCase{
		{"unmasked text", Reader{Role: RoleClient}, []byte("\x81\x05\x48\x65\x6c\x6c\x6f"), []string{"Hello"}, 0},
		{"masked text", server, []byte("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"), []string{"Hello"}, 0},
		{"fragmented", Reader{Role: RoleClient}, []byte("\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f"), []string{"Hel", "lo"}, 0},
		{"ping", Reader{Role: RoleClient}, []byte("\x89\x05\x48\x65\x6c\x6c\x6f"), []string{"Hello"}, 0},
		{"masked pong", server, []byte("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"), []string{"Hello"}, 0},
	})
}

func TestReadFrameRules(t *testing.T) {
	big := strings.Repeat("x", 300)
	long64 := []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1}
	runFrameCases(t, []frameCase{
		{"unmasked client frame", server, sf(nil, true, OpText, "hi"), nil, 1002},
		{"masked server frame", Reader{Role: RoleClient}, cf(nil, true, OpText, "hi"), nil, 1002},
		{"rsv1 without deflate", server, raw(0xC1, "hi"), nil, 1002},
		{"rsv2", server, raw(0xA1, "hi"), nil, 1002},
		{"rsv3", server, raw(0x91, "hi"), nil, 1002},
		{"rsv1 with deflate", Reader{Compression: true}, raw(0xC1, "hi"), []string{"hi"}, 0},
		{"rsv1 on continuation", Reader{Compression: true}, cat(raw(0x41, "a"), raw(0xC0, "b")), []string{"a"}, 1002},
		{"rsv1 on ping", Reader{Compression: true}, raw(0xC9, ""), nil, 1002},
		{"opcode 3", server, raw(0x83, ""), nil, 1002},
		{"opcode 7", server, raw(0x87, ""), nil, 1002},
		{"opcode B", server, raw(0x8B, ""), nil, 1002},
		{"opcode F", server, raw(0x8F, ""), nil, 1002},
		{"ping 125", server, cf(nil, true, OpPing, big[:125]), []string{big[:125]}, 0},
		{"ping 126", server, cat([]byte{0x89, 0x80 | 126, 0, 126}, key[:], make([]byte, 126)), nil, 1002},
		{"fragmented ping", server, raw(0x09, "a"), nil, 1002},
		{"fragmented close", server, raw(0x08, ""), nil, 1002},
		{"continuation first", server, cf(nil, true, OpContinuation, "a"), nil, 1002},
		{"text inside message", server, cat(cf(nil, false, OpText, "a"), cf(nil, true, OpText, "b")), []string{"a"}, 1002},
		{"binary inside message", server, cat(cf(nil, false, OpBinary, "a"), cf(nil, true, OpBinary, "b")), []string{"a"}, 1002},
		{"control interleaved", server, cat(cf(nil, false, OpText, "a"), cf(nil, true, OpPing, "p"), cf(nil, false, OpContinuation, "b"),
			cf(nil, true, OpPong, ""), cf(nil, true, OpContinuation, "c"), cf(nil, true, OpText, "d")), []string{"a", "p", "b", "", "c", "d"}, 0},
		{"64-bit length msb", Reader{Role: RoleClient, MaxMessageBytes: -1}, long64, nil, 1002},
		{"16-bit length non-minimal", server, cat([]byte{0x81, 0x80 | 126, 0, 2}, key[:], maskedCopy("hi")), []string{"hi"}, 0},
		{"64-bit length non-minimal", server, cat([]byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 2}, key[:], maskedCopy("hi")), []string{"hi"}, 0},
		{"16-bit length", server, cf(nil, true, OpBinary, big), []string{big}, 0},
		{"empty frames", server, cat(cf(nil, false, OpText, ""), cf(nil, true, OpContinuation, ""), cf(nil, true, OpBinary, "")), []string{"", "", ""}, 0},
		{"incomplete", server, cf(nil, true, OpText, "hello")[:8], nil, 0},
	})
}

// maskedCopy returns p masked with key.
func maskedCopy(p string) []byte {
	b := []byte(p)
	MaskBytes(*key, 0, b)
	return b
}

func closePayload(code uint16, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, code)) + reason
}

func TestReadFrameClose(t *testing.T) {
	var cases []frameCase
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		p := closePayload(code, "bye")
		cases = append(cases, frameCase{"valid " + p[:2], server, cf(nil, true, OpClose, p), []string{p}, 0})
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, frameCase{"invalid", server, cf(nil, true, OpClose, closePayload(code, "")), nil, 1002})
	}
	cases = append(cases,
		frameCase{"empty", server, cf(nil, true, OpClose, ""), []string{""}, 0},
		frameCase{"one byte", server, cf(nil, true, OpClose, "\x03"), nil, 1002},
		frameCase{"reason not utf-8", server, cf(nil, true, OpClose, closePayload(1000, "a\xffb")), nil, 1007},
		frameCase{"reason cut utf-8", server, cf(nil, true, OpClose, closePayload(1000, "\xe2\x82")), nil, 1007},
		frameCase{"reason utf-8", server, cf(nil, true, OpClose, closePayload(1000, "\u20ac\U0001F600")), []string{closePayload(1000, "\u20ac\U0001F600")}, 0},
	)
	runFrameCases(t, cases)

	var r Reader
	f, _, err := r.ReadFrame(cf(nil, true, OpClose, closePayload(1001, "gone")))
	if err != nil || f.CloseCode != 1001 || string(f.CloseReason) != "gone" {
		t.Fatalf("%+v %v", f, err)
	}
	f, _, err = r.ReadFrame(cf(nil, true, OpClose, ""))
	if err != nil || f.CloseCode != CloseNoStatus {
		t.Fatalf("%+v %v", f, err)
	}
}

func TestReadFrameUTF8(t *testing.T) {
	euro := "\u20ac" // e2 82 ac
	runFrameCases(t, []frameCase{
		{"valid", server, cf(nil, true, OpText, "h\u00e9llo \U0001F600"), []string{"h\u00e9llo \U0001F600"}, 0},
		{"invalid byte", server, cf(nil, true, OpText, "ab\xffcd"), nil, 1007},
		{"overlong", server, cf(nil, true, OpText, "\xc0\xaf"), nil, 1007},
		{"surrogate", server, cf(nil, true, OpText, "\xed\xa0\x80"), nil, 1007},
		{"above U+10FFFF", server, cf(nil, true, OpText, "\xf4\x90\x80\x80"), nil, 1007},
		{"truncated at fin", server, cf(nil, true, OpText, "a\xe2\x82"), nil, 1007},
		{"split across fragments", server, cat(cf(nil, false, OpText, euro[:1]), cf(nil, false, OpContinuation, euro[1:2]), cf(nil, true, OpContinuation, euro[2:])),
			[]string{euro[:1], euro[1:2], euro[2:]}, 0},
		{"split across fragments and a ping", server, cat(cf(nil, false, OpText, euro[:2]), cf(nil, true, OpPing, "\xff"), cf(nil, true, OpContinuation, euro[2:])),
			[]string{euro[:2], "\xff", euro[2:]}, 0},
		{"truncated at fin of fragments", server, cat(cf(nil, false, OpText, "a"), cf(nil, true, OpContinuation, euro[:2])), []string{"a"}, 1007},
		{"invalid in first fragment", server, cat(cf(nil, false, OpText, "a\xff"), cf(nil, true, OpContinuation, "b")), nil, 1007},
		{"invalid continuation", server, cat(cf(nil, false, OpText, euro[:2]), cf(nil, true, OpContinuation, "x")), []string{euro[:2]}, 1007},
		{"binary is not checked", server, cf(nil, true, OpBinary, "\xff\xfe"), []string{"\xff\xfe"}, 0},
		{"compressed text is left to the decompressor", Reader{Compression: true}, raw(0xC1, "\xff"), []string{"\xff"}, 0},
	})
}

// TestReadFrameUTF8FailsFast shows that invalid text is refused as soon as the invalid
// byte arrives, while the rest of the frame has not.
func TestReadFrameUTF8FailsFast(t *testing.T) {
	payload := "valid so far \xff" + strings.Repeat("x", 1000)
	in := cf(nil, true, OpText, payload)
	cut := len(in) - 1000
	r := server
	_, _, err := r.ReadFrame(append([]byte(nil), in[:cut-1]...))
	if err != ErrNeedMore {
		t.Fatalf("before the bad byte: %v", err)
	}
	_, _, err = r.ReadFrame(append([]byte(nil), in[:cut]...))
	if err != ErrInvalidUTF8 {
		t.Fatalf("with the bad byte: %v", err)
	}
}

func TestReadFrameLimit(t *testing.T) {
	lim := Reader{MaxMessageBytes: 10}
	ten := strings.Repeat("a", 10)
	runFrameCases(t, []frameCase{
		{"at limit", lim, cf(nil, true, OpBinary, ten), []string{ten}, 0},
		{"over limit", lim, cf(nil, true, OpBinary, ten+"a"), nil, 1009},
		{"fragments over", lim, cat(cf(nil, false, OpText, ten[:6]), cf(nil, true, OpContinuation, ten[:5])), []string{ten[:6]}, 1009},
		{"fragments at limit then more", lim, cat(cf(nil, false, OpText, ten[:6]), cf(nil, true, OpContinuation, ten[:4]), cf(nil, true, OpText, ten)),
			[]string{ten[:6], ten[:4], ten}, 0},
		{"control frames do not count", lim, cat(cf(nil, false, OpText, ten), cf(nil, true, OpPing, ten), cf(nil, true, OpContinuation, "")), []string{ten, ten, ""}, 0},
	})
	// The limit is checked on the length field, before any payload arrives.
	r := Reader{MaxMessageBytes: 1 << 20}
	hdr := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}
	if _, _, err := r.ReadFrame(hdr); err != ErrMessageTooBig {
		t.Fatalf("got %v", err)
	}
	// The default is DefaultMaxMessageBytes.
	var d Reader
	hdr = AppendFrameHeader(nil, true, OpBinary, false, DefaultMaxMessageBytes+1, key)
	if _, _, err := d.ReadFrame(hdr); err != ErrMessageTooBig {
		t.Fatalf("default limit: %v", err)
	}
}

func TestWriteFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		p := bytes.Repeat([]byte{'z'}, n)
		for _, role := range []Role{RoleServer, RoleClient} {
			var mask *[4]byte
			if role == RoleServer {
				mask = key // what a client writes, a server reads
			}
			frame := AppendFrame([]byte("prefix"), true, OpBinary, false, p, mask)[6:]
			want := 2 + n
			switch {
			case n > 65535:
				want += 8
			case n > 125:
				want += 2
			}
			if mask != nil {
				want += 4
			}
			if len(frame) != want {
				t.Fatalf("n=%d: frame of %d bytes, want %d", n, len(frame), want)
			}
			r := Reader{Role: role, MaxMessageBytes: -1}
			f, used, err := r.ReadFrame(frame)
			if err != nil || used != len(frame) || !bytes.Equal(f.Payload, p) || !f.Fin || f.Opcode != OpBinary {
				t.Fatalf("n=%d role=%d: %v used=%d", n, role, err, used)
			}
		}
	}
}

func TestAppendClose(t *testing.T) {
	long := strings.Repeat("\U0001F600", 40) // 160 bytes: cut to 120, the last boundary before 123
	for _, c := range []struct {
		code   uint16
		reason string
		want   string
	}{
		{0, "ignored", ""},
		{1000, "", closePayload(1000, "")},
		{1001, "bye", closePayload(1001, "bye")},
		{1000, long, closePayload(1000, long[:120])},
	} {
		fr := AppendClose(nil, c.code, c.reason, nil)
		r := Reader{Role: RoleClient}
		f, _, err := r.ReadFrame(fr)
		if err != nil || string(f.Payload) != c.want || f.Opcode != OpClose {
			t.Fatalf("close(%d, %q): %q %v", c.code, c.reason, f.Payload, err)
		}
	}
	// Control payloads are cut to 125 bytes.
	fr := AppendFrame(nil, true, OpPing, false, make([]byte, 200), nil)
	if len(fr) != 127 {
		t.Fatalf("ping frame of %d bytes", len(fr))
	}
}

func TestMaskBytesPieces(t *testing.T) {
	p := []byte(strings.Repeat("0123456789", 10))
	whole := append([]byte(nil), p...)
	MaskBytes(*key, 0, whole)
	pos, rest := 0, p
	for _, n := range []int{3, 17, 1, 40, 39} {
		pos = MaskBytes(*key, pos, rest[:n])
		rest = rest[n:]
	}
	if !bytes.Equal(p, whole) {
		t.Fatal("masking in pieces differs from masking whole")
	}
}

// TestReaderSize keeps the per-connection frame state small: it is part of what an idle
// WebSocket connection costs.
func TestReaderSize(t *testing.T) {
	if n := unsafe.Sizeof(Reader{}); n > 48 {
		t.Fatalf("Reader is %d bytes", n)
	}
}

// TestReadPartLargeFrame reads a 300 KiB frame arriving in 4 KiB reads without ever
// holding more than a frame header unconsumed, and refuses invalid text at the part that
// holds the bad byte.
func TestReadPartLargeFrame(t *testing.T) {
	payload := bytes.Repeat([]byte("\u20ac-"), 300<<10/4)
	in := cat(cf(nil, true, OpBinary, "x"), AppendFrame(nil, true, OpText, false, payload, key))
	r := Reader{MaxMessageBytes: 1 << 20}
	var got []byte
	var pending []byte
	frames := 0
	for off := 0; off < len(in); off += 4096 {
		pending = append(pending, in[off:min(off+4096, len(in))]...)
		for len(pending) > 0 {
			f, n, err := r.ReadPart(pending)
			if err == ErrNeedMore {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Opcode == OpText {
				got = append(got, f.Payload...)
				if f.Remaining != int64(len(payload)-len(got)) || f.More != (f.Remaining > 0) {
					t.Fatalf("Remaining %d after %d bytes", f.Remaining, len(got))
				}
			}
			if !f.More {
				frames++
			}
			pending = pending[n:]
		}
		if len(pending) > 14 {
			t.Fatalf("%d bytes left unconsumed", len(pending))
		}
	}
	if frames != 2 || !bytes.Equal(got, payload) || r.InMessage() {
		t.Fatalf("%d frames, %d bytes", frames, len(got))
	}

	bad := append(bytes.Repeat([]byte("a"), 5000), 0xff)
	in = AppendFrame(nil, true, OpText, false, append(bad, make([]byte, 5000)...), key)
	r = Reader{}
	_, n, err := r.ReadPart(in[:4096])
	if err != nil || n != 4096 {
		t.Fatalf("first part: %d %v", n, err)
	}
	if _, n, err := r.ReadPart(nil); err != ErrNeedMore || n != 0 {
		t.Fatalf("empty input inside a frame: %d %v", n, err)
	}
	if _, _, err := r.ReadPart(in[4096 : 4096+len(bad)]); err != ErrInvalidUTF8 {
		t.Fatalf("part with the bad byte: %v", err)
	}
}

// TestReadFrameThenPart mixes the two readers: ReadFrame stops inside a text frame, ReadPart
// takes it over, and a later incomplete frame is checked from its own start.
func TestReadFrameThenPart(t *testing.T) {
	euro := "\u20ac"
	in := cat(cf(nil, true, OpText, "ab"+euro[:2]+euro[2:]), cf(nil, true, OpText, "\xffzzzzzzzzzz"))
	first := len(in) - len(cf(nil, true, OpText, "\xffzzzzzzzzzz"))
	r := Reader{}
	buf := append([]byte(nil), in[:first-3]...)
	if _, _, err := r.ReadFrame(buf); err != ErrNeedMore {
		t.Fatalf("ReadFrame: %v", err)
	}
	buf = append([]byte(nil), in...)
	f, n, err := r.ReadPart(buf)
	if err != nil || n != first || f.More || string(f.Payload) != "ab"+euro {
		t.Fatalf("ReadPart: %q %d %v", f.Payload, n, err)
	}
	// The second frame's first payload byte is invalid: refused before its end arrives.
	if _, _, err := r.ReadFrame(buf[n : len(buf)-2]); err != ErrInvalidUTF8 {
		t.Fatalf("second frame: %v", err)
	}
}
