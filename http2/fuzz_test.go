package http2

import (
	"bytes"
	"testing"
)

// FuzzReadFrame checks that no input panics the frame reader and that what it returns is
// consistent: a frame's consumed length is its header plus its declared payload, and its
// Data lies inside that payload.
func FuzzReadFrame(f *testing.F) {
	for _, tc := range validFrames() {
		f.Add(tc.raw)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, n, err := ReadFrame(in, MinMaxFrameSize)
		switch err.(type) {
		case nil, *StreamError:
			if n != HeaderLen+int(fr.Length) || n > len(in) {
				t.Fatalf("consumed %d for length %d of %d", n, fr.Length, len(in))
			}
			if len(fr.Data) > int(fr.Length) {
				t.Fatalf("data %d longer than payload %d", len(fr.Data), fr.Length)
			}
			if len(fr.Data) > 0 && !bytes.Contains(in[HeaderLen:n], fr.Data) {
				t.Fatal("data outside the payload")
			}
		default:
			if n != 0 {
				t.Fatalf("consumed %d with error %v", n, err)
			}
		}
	})
}

// FuzzConn feeds arbitrary frame sequences after the preface and SETTINGS to a Conn whose
// handler answers every request. Nothing may panic, and output that nobody drains must stay
// within the configured caps plus a bounded multiple of the input: no input amplifies the
// output without limit.
func FuzzConn(f *testing.F) {
	f.Add(clientSession()[len(Preface):], uint8(0))
	f.Add(clientSession()[len(Preface):], uint8(1))
	f.Add(AppendPing(AppendSettings(nil, false), false, [8]byte{}), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, mode uint8) {
		cfg := Config{MaxOutputBuffered: 32 << 10, MaxControlBuffered: 8 << 10}
		h := &logHandler{}
		h.c = NewConn(cfg, h)
		start := len(h.c.Out())
		chunk := int(mode>>1) + 1
		var pending []byte
		for off := 0; off < len(in); off += chunk {
			if off == 0 {
				pending = append(pending, Preface...)
			}
			pending = append(pending, in[off:min(off+chunk, len(in))]...)
			n, err := h.c.Feed(pending)
			pending = pending[n:]
			if mode&1 == 1 {
				h.c.Drained(len(h.c.Out()))
			}
			if bound := start + 40<<10 + 4*(off+chunk+len(Preface)); len(h.c.Out()) > bound {
				t.Fatalf("output %d octets after %d of input", len(h.c.Out()), off+chunk)
			}
			if err != nil {
				if _, ok := err.(*ConnError); !ok {
					t.Fatalf("error of type %T", err)
				}
				return
			}
		}
	})
}
