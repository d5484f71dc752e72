package websocket

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/gale-server/gale/http1"
)

// readerFor derives a Reader configuration from a fuzzed byte: role, compression and a
// small or default message limit.
func readerFor(flags byte) Reader {
	r := Reader{Role: Role(flags & 1), Compression: flags&2 != 0}
	if flags&4 != 0 {
		r.MaxMessageBytes = 40
	}
	return r
}

// FuzzReadFrame checks that any input gives the same frames and error fed whole, split
// anywhere and one byte at a time, read with ReadFrame or ReadPart, and that every frame read satisfies RFC 6455 §5 and
// re-encodes to itself. Seeds live in testdata/fuzz/FuzzReadFrame.
func FuzzReadFrame(f *testing.F) {
	f.Add(cf(nil, true, OpText, "Hello"), byte(0))
	f.Add([]byte("\x81\x05Hello"), byte(1))
	f.Fuzz(func(t *testing.T, in []byte, flags byte) {
		if len(in) > 2048 {
			return
		}
		proto := readerFor(flags)
		if len(in) <= 64 {
			allWays(t, proto, in)
		} else {
			whole := driveFrames(t, proto, in, nil)
			k := 1 + int(flags)%(len(in)-1)
			if got := driveFrames(t, proto, in, []int{k}); got.code != whole.code || len(got.frames) != len(whole.frames) {
				t.Fatalf("split at %d:\n got  %v\n want %v", k, got, whole)
			}
			if got := driveParts(t, proto, in, []int{k}); got.code != whole.code || len(got.frames) != len(whole.frames) {
				t.Fatalf("parts, split at %d:\n got  %v\n want %v", k, got, whole)
			}
		}
		checkFrameInvariants(t, proto, append([]byte(nil), in...))
	})
}

// checkFrameInvariants reads the frames of in one after another and checks each one.
func checkFrameInvariants(t *testing.T, r Reader, in []byte) {
	for len(in) > 0 {
		f, n, err := r.ReadFrame(in)
		if err != nil {
			var pe *ProtocolError
			if !errors.Is(err, ErrNeedMore) && !errors.As(err, &pe) {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		if f.Opcode.IsControl() && (!f.Fin || len(f.Payload) > MaxControlPayload) {
			t.Fatalf("control frame %+v", f)
		}
		if f.Opcode == OpClose && f.CloseCode != CloseNoStatus && (!ValidCloseCode(f.CloseCode) || !validUTF8(f.CloseReason)) {
			t.Fatalf("close frame %+v", f)
		}
		if f.Message == OpText && !f.Compressed && f.Fin && f.Opcode == OpText && !validUTF8(f.Payload) {
			t.Fatalf("invalid text accepted: %q", f.Payload)
		}
		// Re-encoding the frame (unmasked, as it now is) reads back the same frame.
		again := AppendFrame(nil, f.Fin, f.Opcode, f.Opcode != OpContinuation && f.Compressed, f.Payload, nil)
		peer := Reader{Role: RoleClient, Compression: true, MaxMessageBytes: -1, inMsg: f.Opcode == OpContinuation, msgOp: f.Message, compressed: f.Compressed}
		g, m, err := peer.ReadFrame(again)
		if err != nil && !(errors.Is(err, ErrInvalidUTF8) && f.Opcode == OpContinuation) {
			t.Fatalf("re-read %v of %+v", err, f)
		}
		if err == nil && (m != len(again) || snapFrame(g) != snapFrame(f)) {
			t.Fatalf("re-read %s, want %s", snapFrame(g), snapFrame(f))
		}
		in = in[n:]
	}
}

// FuzzHandshake checks that any request head either is refused with a status the
// package documents or gets a 101 response with well-formed header lines whose extension
// parameters read back. Seeds live in testdata/fuzz/FuzzHandshake.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\nOrigin: http://a\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 4096 {
			return
		}
		var p http1.Parser
		req := &http1.Request{}
		req.Reset()
		var views []Request
		if _, err := p.ParseHead(raw, req); err == nil {
			views = append(views, FromHTTP1(req))
		}
		// The same bytes as loose "name: value" lines, past http1's strictness.
		var fl Fields
		var host []byte
		for _, l := range bytes.Split(raw, []byte("\n")) {
			name, val, ok := bytes.Cut(l, []byte(":"))
			if ok {
				fl = append(fl, Field{name, val})
				if foldEq(name, "host") {
					host = bytes.TrimSpace(val)
				}
			}
		}
		views = append(views, Request{Method: []byte("GET"), Host: host, Header: fl})
		for _, d := range []DeflateOptions{{}, DefaultDeflateOptions(), {ServerMaxWindowBits: 9, ClientMaxWindowBits: 8}} {
			opt := HandshakeOptions{Subprotocols: []string{"chat", "v2"}, Deflate: &d, AllowedOrigins: nil}
			for _, v := range views {
				checkHandshake(t, v, &opt)
				opt.AllowedOrigins = []string{"http://a", "b:8080"}
				checkHandshake(t, v, &opt)
			}
		}
	})
}

func checkHandshake(t *testing.T, r Request, opt *HandshakeOptions) {
	a, err := Handshake(r, opt)
	if err != nil {
		var he *HandshakeError
		if !errors.As(err, &he) {
			t.Fatalf("error %T", err)
		}
		switch he.Status {
		case 400, 403, 405, 426:
		default:
			t.Fatalf("status %d", he.Status)
		}
		if resp := he.AppendResponse(nil); !bytes.Contains(resp, []byte("\r\n\r\n")) {
			t.Fatalf("response %q", resp)
		}
		return
	}
	head := string(a.AppendResponse(nil))
	lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
	for _, l := range lines[1:] {
		if strings.ContainsAny(l, "\r\n\x00") || !strings.Contains(l, ": ") {
			t.Fatalf("bad header line %q", l)
		}
	}
	if a.Compression {
		p, ok, err := ParseDeflateResponse(Fields{{[]byte("Sec-WebSocket-Extensions"), a.Deflate.AppendExtension(nil)}})
		if !ok || err != nil || p.ServerMaxWindowBits != a.Deflate.ServerMaxWindowBits || p.ServerNoContextTakeover != a.Deflate.ServerNoContextTakeover ||
			p.ClientNoContextTakeover != a.Deflate.ClientNoContextTakeover {
			t.Fatalf("extension %q reads back as %+v %v %v", a.Deflate.AppendExtension(nil), p, ok, err)
		}
		if p.ServerMaxWindowBits < 15 && !p.ServerNoContextTakeover {
			t.Fatal("small server window with context takeover")
		}
	}
}

// FuzzInflate checks that inflating any input stays within the limit, validates text,
// and that whatever inflates compresses and inflates back to itself. Seeds live in
// testdata/fuzz/FuzzInflate.
func FuzzInflate(f *testing.F) {
	f.Add([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, false, uint16(100), true)
	f.Fuzz(func(t *testing.T, msg []byte, takeover bool, limit uint16, text bool) {
		d := NewDecompressor()
		var w *Window
		if takeover {
			w = &Window{}
		}
		for range 2 { // the second time with the first message's context when takeover
			out, err := d.Inflate(nil, msg, w, int64(limit), text)
			if len(out) > int(limit)+1 {
				t.Fatalf("output %d over limit %d", len(out), limit)
			}
			if err != nil {
				if !errors.Is(err, ErrMessageTooBig) && !errors.Is(err, ErrBadDeflate) && !errors.Is(err, ErrInvalidUTF8) {
					t.Fatalf("error %v", err)
				}
				return
			}
			if text && !validUTF8(out) {
				t.Fatalf("invalid text %q", out)
			}
			comp, _ := NewCompressor(0).Compress(nil, out, false, 15)
			back, err := NewDecompressor().Inflate(nil, comp, nil, -1, false)
			if err != nil || !bytes.Equal(back, out) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}
