package websocket

import (
	"compress/flate"
	"io"
	"slices"
)

// deflateTail is what RFC 7692 §7.2.2 has the receiver append to a message before
// inflating it (the end of an empty stored block, which the sender stripped), followed
// by an empty final stored block so that the inflater reports the end of the stream.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// windowSize is the LZ77 window of compress/flate, 1<<15 bytes.
const windowSize = 1 << 15

// Compressor compresses messages for permessage-deflate. It is owned by one loop: a
// connection that keeps its context holds its own; otherwise it borrows one from a
// DeflatePool for each message.
type Compressor struct {
	fw    *flate.Writer
	sink  appendSink
	level int
	dirty bool // fw holds context from an earlier message
}

// appendSink is the io.Writer the flate.Writer writes into: it appends to b.
type appendSink struct{ b []byte }

func (s *appendSink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// NewCompressor returns a compressor at a compress/flate level (1-9, or
// flate.HuffmanOnly); 0 and invalid levels mean flate.BestSpeed.
func NewCompressor(level int) *Compressor {
	level = compressorLevel(level)
	c := &Compressor{level: level}
	c.fw, _ = flate.NewWriter(&c.sink, level) // the level is valid
	return c
}

// Compress appends the permessage-deflate payload of msg to dst (the deflate data with
// the final 00 00 ff ff removed, RFC 7692 §7.2.1) and reports true; the caller sends it
// with RSV1 on the message's first frame. takeover keeps the context of earlier messages
// (only when the negotiation allows it); windowBits is the negotiated window (8-15, 0 for
// 15). Because compress/flate always uses a 32 KiB window, for windowBits below 15 the
// context is never kept and a message longer than 1<<windowBits is not compressed:
// Compress then returns dst unchanged and false, and the caller sends msg as is, without
// RSV1.
func (c *Compressor) Compress(dst, msg []byte, takeover bool, windowBits int) ([]byte, bool) {
	if windowBits > 0 && windowBits < 15 {
		if len(msg) > 1<<windowBits {
			return dst, false
		}
		takeover = false
	}
	if c.dirty && !takeover {
		c.fw.Reset(&c.sink)
	}
	c.sink.b = dst
	c.fw.Write(msg) // appendSink never fails
	c.fw.Flush()
	out := c.sink.b
	c.sink.b = nil
	c.dirty = true
	if n := len(out); n-len(dst) >= 4 && out[n-4] == 0 && out[n-3] == 0 && out[n-2] == 0xff && out[n-1] == 0xff {
		out = out[:n-4]
	}
	return out, true
}

// Reset drops the context of earlier messages.
func (c *Compressor) Reset() {
	if c.dirty {
		c.fw.Reset(&c.sink)
		c.dirty = false
	}
}

// Decompressor inflates permessage-deflate messages. It holds no context of its own: a
// connection whose peer keeps its context holds only a Window and borrows a Decompressor
// from its loop's DeflatePool per message, like every other connection. It is owned by
// one loop.
type Decompressor struct {
	fr  io.ReadCloser // a flate reader, also a flate.Resetter
	src msgSource
}

// Window is the context a connection keeps when its peer compresses with context
// takeover: the last 32 KiB of the messages it inflated. The zero value is empty. It is
// owned by the connection's loop.
type Window struct {
	b []byte
}

// Reset empties the window.
func (w *Window) Reset() { w.b = w.b[:0] }

// Len returns how many bytes of context the window holds (at most 32 KiB).
func (w *Window) Len() int { return len(w.b) }

// msgSource feeds a message followed by deflateTail to the inflater. It implements
// io.ByteReader so that compress/flate reads no further than it needs (no bufio).
type msgSource struct {
	msg []byte
	pos int // position in msg followed by deflateTail
}

func (s *msgSource) ReadByte() (byte, error) {
	switch {
	case s.pos < len(s.msg):
		s.pos++
		return s.msg[s.pos-1], nil
	case s.pos < len(s.msg)+len(deflateTail):
		s.pos++
		return deflateTail[s.pos-1-len(s.msg)], nil
	}
	return 0, io.EOF
}

func (s *msgSource) Read(p []byte) (int, error) {
	n := 0
	if s.pos < len(s.msg) {
		n = copy(p, s.msg[s.pos:])
	}
	if t := s.pos + n - len(s.msg); n < len(p) && t < len(deflateTail) {
		n += copy(p[n:], deflateTail[t:])
	}
	s.pos += n
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// NewDecompressor returns a decompressor.
func NewDecompressor() *Decompressor {
	d := &Decompressor{}
	d.fr = flate.NewReader(&d.src)
	return d
}

// Inflate appends the decompressed form of a whole compressed message (its frames'
// payloads concatenated) to dst. w is the connection's Window when the peer keeps its
// context (the output of earlier messages is the dictionary and this one's is added to
// w), or nil when it does not. limit bounds the decompressed size (negative for no limit)
// and is checked while inflating: output beyond it stops the inflater at once with
// ErrMessageTooBig, having grown dst by at most limit+1 bytes. When text is set the
// output is validated as UTF-8 as it is produced, failing with ErrInvalidUTF8 at the
// first invalid byte. Corrupt deflate data gives ErrBadDeflate. After an error w no longer
// matches the peer's context; the connection must be closed.
func (d *Decompressor) Inflate(dst, msg []byte, w *Window, limit int64, text bool) ([]byte, error) {
	var dict []byte
	if w != nil {
		dict = w.b
	}
	d.src = msgSource{msg: msg}
	d.fr.(flate.Resetter).Reset(&d.src, dict)
	start := len(dst)
	var st utf8State
	for {
		room := cap(dst) - len(dst)
		if room == 0 {
			want := max(4096, len(dst)-start)
			if limit >= 0 {
				want = int(min(int64(want), limit+1-int64(len(dst)-start)))
			}
			dst = slices.Grow(dst, want)
			room = cap(dst) - len(dst)
		}
		if limit >= 0 {
			room = int(min(int64(room), limit+1-int64(len(dst)-start)))
		}
		n, err := d.fr.Read(dst[len(dst) : len(dst)+room])
		if text && st.feed(dst[len(dst):len(dst)+n]) >= 0 {
			return dst, ErrInvalidUTF8
		}
		dst = dst[:len(dst)+n]
		if limit >= 0 && int64(len(dst)-start) > limit {
			return dst, ErrMessageTooBig
		}
		if err == io.EOF {
			if d.src.pos < len(msg) {
				// A block with BFINAL set ended the stream inside the message; what
				// follows is a new stream with the output so far as its dictionary.
				d.fr.(flate.Resetter).Reset(&d.src, lastWindow(dict, dst[start:]))
				continue
			}
			break
		}
		if err != nil {
			return dst, ErrBadDeflate
		}
	}
	if text && !st.complete() {
		return dst, ErrInvalidUTF8
	}
	if w != nil {
		w.keep(dst[start:])
	}
	return dst, nil
}

// keep appends out to the window and trims it to its last windowSize bytes.
func (w *Window) keep(out []byte) {
	if len(out) >= windowSize {
		w.b = append(w.b[:0], out[len(out)-windowSize:]...)
		return
	}
	if cut := len(w.b) + len(out) - windowSize; cut > 0 {
		w.b = w.b[:copy(w.b, w.b[cut:])]
	}
	w.b = append(w.b, out...)
}

// lastWindow returns the last windowSize bytes of dict followed by out, as a new slice.
func lastWindow(dict, out []byte) []byte {
	w := append(append([]byte(nil), dict...), out...)
	if len(w) > windowSize {
		w = w[len(w)-windowSize:]
	}
	return w
}

// DeflatePool keeps idle compressors and decompressors, so that a connection holds none
// between messages: decompressors serve every connection (context lives in a Window), and
// compressors serve connections that do not keep their own context. It is owned by one loop
// (no locks): Get before a message, Put right after. The zero value is ready; Level is the
// compress/flate level of the compressors it makes (0 for flate.BestSpeed) and MaxIdle
// bounds how many of each kind it keeps (0 for 4).
type DeflatePool struct {
	Level   int
	MaxIdle int
	comps   []*Compressor
	decomps []*Decompressor
}

func (p *DeflatePool) maxIdle() int {
	if p.MaxIdle > 0 {
		return p.MaxIdle
	}
	return 4
}

// GetCompressor returns an idle compressor without context, or a new one.
func (p *DeflatePool) GetCompressor() *Compressor {
	if c := pop(&p.comps); c != nil {
		return c
	}
	return NewCompressor(p.Level)
}

// PutCompressor gives c back: its context is dropped, and it is kept if the pool has room
// and it was made at the pool's level.
func (p *DeflatePool) PutCompressor(c *Compressor) {
	if len(p.comps) >= p.maxIdle() || c.level != compressorLevel(p.Level) {
		return
	}
	c.Reset()
	p.comps = append(p.comps, c)
}

// compressorLevel returns the level NewCompressor uses for level.
func compressorLevel(level int) int {
	if level == 0 || level < flate.HuffmanOnly || level > flate.BestCompression {
		return flate.BestSpeed
	}
	return level
}

// GetDecompressor returns an idle decompressor, or a new one.
func (p *DeflatePool) GetDecompressor() *Decompressor {
	if d := pop(&p.decomps); d != nil {
		return d
	}
	return NewDecompressor()
}

// PutDecompressor gives d back and keeps it if the pool has room.
func (p *DeflatePool) PutDecompressor(d *Decompressor) {
	if len(p.decomps) >= p.maxIdle() {
		return
	}
	p.decomps = append(p.decomps, d)
}

// Idle returns how many compressors and decompressors the pool holds.
func (p *DeflatePool) Idle() (compressors, decompressors int) {
	return len(p.comps), len(p.decomps)
}

// pop removes and returns the last element of *s, or nil when it is empty.
func pop[T any](s *[]*T) *T {
	n := len(*s)
	if n == 0 {
		return nil
	}
	v := (*s)[n-1]
	(*s)[n-1] = nil
	*s = (*s)[:n-1]
	return v
}
