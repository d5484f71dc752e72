package websocket

import (
	"bytes"
	"compress/flate"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestInflateRFC7692Examples inflates the payloads of RFC 7692 §7.2.3.
func TestInflateRFC7692Examples(t *testing.T) {
	d := NewDecompressor()
	for _, c := range []struct {
		name     string
		msgs     [][]byte
		takeover bool
	}{
		{"one block", [][]byte{{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}}, false},
		{"context takeover", [][]byte{{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, {0xf2, 0x00, 0x11, 0x00, 0x00}}, true},
		{"stored block", [][]byte{{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}}, false},
		{"bfinal", [][]byte{{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}}, false},
		{"two blocks", [][]byte{{0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}}, false},
	} {
		var w *Window
		if c.takeover {
			w = &Window{}
		}
		for i, m := range c.msgs {
			out, err := d.Inflate(nil, m, w, 100, true)
			if err != nil || string(out) != "Hello" {
				t.Fatalf("%s message %d: %q %v", c.name, i, out, err)
			}
		}
	}
	// The second message of the takeover example needs the first one's context.
	if out, err := d.Inflate(nil, []byte{0xf2, 0x00, 0x11, 0x00, 0x00}, nil, 100, false); err == nil && string(out) == "Hello" {
		t.Fatal("inflated a back-reference without context")
	}
}

// TestCompressRFC7692 checks the compressor against the RFC's first example and the
// empty message (a single 0x00 byte, §7.2.3.6).
func TestCompressRFC7692(t *testing.T) {
	c := NewCompressor(flate.BestSpeed)
	out, ok := c.Compress(nil, nil, false, 15)
	if !ok || !bytes.Equal(out, []byte{0x00}) {
		t.Fatalf("empty message: % x", out)
	}
	d := NewDecompressor()
	if got, err := d.Inflate(nil, out, nil, 0, true); err != nil || len(got) != 0 {
		t.Fatalf("inflate empty: %q %v", got, err)
	}
}

func TestDeflateRoundTrip(t *testing.T) {
	msgs := []string{"Hello", "Hello", strings.Repeat("abcdefgh", 5000), "", "\u20ac uro", strings.Repeat("Hello", 3)}
	for _, takeover := range []bool{false, true} {
		c, d := NewCompressor(flate.DefaultCompression), NewDecompressor()
		var w *Window
		if takeover {
			w = &Window{}
		}
		var sizes []int
		for _, m := range msgs {
			comp, ok := c.Compress([]byte("pre"), []byte(m), takeover, 15)
			if !ok {
				t.Fatal("not compressed")
			}
			sizes = append(sizes, len(comp)-3)
			out, err := d.Inflate([]byte("x"), comp[3:], w, int64(len(m)), true)
			if err != nil || string(out[1:]) != m {
				t.Fatalf("takeover=%v %q: got %q %v", takeover, m[:min(len(m), 10)], out[1:min(len(out), 11)], err)
			}
		}
		// With context the repeated "Hello" is a back-reference.
		if takeover != (sizes[1] < sizes[0]) {
			t.Fatalf("takeover=%v sizes %v", takeover, sizes)
		}
	}
}

// TestInflateTakeoverWindow crosses the 32 KiB window over several messages.
func TestInflateTakeoverWindow(t *testing.T) {
	c, d := NewCompressor(flate.BestCompression), NewDecompressor()
	var w Window
	var all []byte
	for i := range 40 {
		m := []byte(fmt.Sprintf("%05d-%s", i, strings.Repeat(string(rune('a'+i%26)), 3000)))
		all = append(all, m...)
		comp, _ := c.Compress(nil, append(m, all[len(all)/2:len(all)/2+200]...), true, 15)
		// A different decompressor each time: the context is all in the Window.
		if i%2 == 1 {
			d = NewDecompressor()
		}
		out, err := d.Inflate(nil, comp, &w, -1, false)
		if err != nil || !bytes.Equal(out, append(m, all[len(all)/2:len(all)/2+200]...)) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if w.Len() != windowSize {
		t.Fatalf("window %d", w.Len())
	}
}

// TestInflateBomb refuses 10 MB of zeros compressed to a few KB with a 1 MiB limit,
// without allocating anywhere near 10 MB.
func TestInflateBomb(t *testing.T) {
	c := NewCompressor(flate.BestCompression)
	bomb, _ := c.Compress(nil, make([]byte, 10<<20), false, 15)
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb of %d bytes", len(bomb))
	}
	d := NewDecompressor()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, err := d.Inflate(nil, bomb, nil, 1<<20, false)
	runtime.ReadMemStats(&after)
	if err != ErrMessageTooBig {
		t.Fatalf("got %v", err)
	}
	if len(out) > 1<<20+1 || cap(out) > 5<<18 {
		t.Fatalf("output grew to len %d cap %d", len(out), cap(out))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("allocated %d bytes", alloc)
	}
	// The same message within a large enough limit inflates.
	out, err = d.Inflate(out[:0], bomb, nil, 10<<20, false)
	if err != nil || len(out) != 10<<20 {
		t.Fatalf("within the limit: %d %v", len(out), err)
	}
}

func TestInflateTextFailsFast(t *testing.T) {
	c, d := NewCompressor(0), NewDecompressor()
	msg := append([]byte("ok \xff"), make([]byte, 4<<20)...)
	comp, _ := c.Compress(nil, msg, false, 15)
	out, err := d.Inflate(nil, comp, nil, -1, true)
	if err != ErrInvalidUTF8 || cap(out) > 64<<10 {
		t.Fatalf("got %v after %d bytes (cap %d)", err, len(out), cap(out))
	}
	comp, _ = c.Compress(nil, []byte("cut \xe2\x82"), false, 15)
	if _, err := d.Inflate(nil, comp, nil, -1, true); err != ErrInvalidUTF8 {
		t.Fatalf("truncated sequence: %v", err)
	}
	if out, err := d.Inflate(nil, comp, nil, -1, false); err != nil || string(out) != "cut \xe2\x82" {
		t.Fatalf("as binary: %q %v", out, err)
	}
}

func TestInflateCorrupt(t *testing.T) {
	d := NewDecompressor()
	for _, m := range [][]byte{{0xff, 0xff, 0xff}, {0x07}, {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff}} {
		if _, err := d.Inflate(nil, m, nil, 100, false); err != ErrBadDeflate {
			t.Fatalf("% x: %v", m, err)
		}
	}
	// The decompressor is usable again after an error.
	if out, err := d.Inflate(nil, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, nil, 100, false); err != nil || string(out) != "Hello" {
		t.Fatalf("after an error: %q %v", out, err)
	}
}

func TestCompressWindowBits(t *testing.T) {
	c, d := NewCompressor(0), NewDecompressor()
	long := []byte(strings.Repeat("0123456789", 52)) // 520 > 1<<9
	if out, ok := c.Compress([]byte("keep"), long, true, 9); ok || string(out) != "keep" {
		t.Fatalf("long message compressed with 9 window bits: %v %q", ok, out)
	}
	short := long[:512]
	for range 2 {
		out, ok := c.Compress(nil, short, true, 9)
		if !ok {
			t.Fatal("short message not compressed")
		}
		// No context is kept below 15 bits, so a decompressor without context reads it.
		if got, err := d.Inflate(nil, out, nil, -1, false); err != nil || !bytes.Equal(got, short) {
			t.Fatalf("%v", err)
		}
	}
}

func TestDeflatePool(t *testing.T) {
	p := DeflatePool{MaxIdle: 2}
	c1, c2, c3 := p.GetCompressor(), p.GetCompressor(), p.GetCompressor()
	first, _ := c1.Compress(nil, []byte("Hello Hello"), true, 15)
	p.PutCompressor(c1)
	p.PutCompressor(c2)
	p.PutCompressor(c3)
	if n, _ := p.Idle(); n != 2 {
		t.Fatalf("%d idle compressors", n)
	}
	// A pooled compressor has no context: it compresses as a fresh one does.
	for range 2 {
		c := p.GetCompressor()
		again, _ := c.Compress(nil, []byte("Hello Hello"), true, 15)
		if !bytes.Equal(again, first) {
			t.Fatalf("pooled compressor kept context: % x vs % x", again, first)
		}
		defer p.PutCompressor(c)
	}
	p.PutCompressor(NewCompressor(flate.BestCompression)) // another level is not kept
	d := p.GetDecompressor()
	p.PutDecompressor(d)
	if _, n := p.Idle(); n != 1 || p.GetDecompressor() != d {
		t.Fatal("decompressor not pooled")
	}
}

// TestCompressedMessageThroughReader reads a fragmented compressed message fed in every
// way and inflates the collected payloads.
func TestCompressedMessageThroughReader(t *testing.T) {
	msg := strings.Repeat("compress me ", 20)
	comp, _ := NewCompressor(0).Compress(nil, []byte(msg), false, 15)
	k := len(comp) / 2
	in := cat(AppendFrame(nil, false, OpText, true, comp[:k], key), cf(nil, true, OpPing, "p"),
		AppendFrame(nil, true, OpContinuation, false, comp[k:], key))
	o := allWays(t, Reader{Compression: true}, in)
	if o.code != 0 || len(o.frames) != 3 || !strings.Contains(o.frames[2], "comp=true") {
		t.Fatalf("%v", o)
	}
	r := Reader{Compression: true}
	var collected []byte
	for len(in) > 0 {
		f, n, err := r.ReadFrame(in)
		if err != nil {
			t.Fatal(err)
		}
		if f.Compressed {
			collected = append(collected, f.Payload...)
		}
		in = in[n:]
	}
	out, err := NewDecompressor().Inflate(nil, collected, nil, int64(len(msg)), true)
	if err != nil || string(out) != msg {
		t.Fatalf("%q %v", out, err)
	}
	if _, err := NewDecompressor().Inflate(nil, collected, nil, int64(len(msg)-1), true); err != ErrMessageTooBig {
		t.Fatalf("one byte over the limit: %v", err)
	}
}
