package wsproto

import (
	"bytes"
	"compress/flate"
	"io"
)

// tail is the empty stored block that RFC 7692 section 7.2.1 strips from the end of every
// compressed message and section 7.2.2 appends again before inflating.
var tail = []byte{0x00, 0x00, 0xff, 0xff}

// Deflate compresses and inflates whole messages for one connection without context
// takeover (DeflateOffer). It keeps one compressor and one decompressor for the
// connection's life and resets them per message. A Deflate is used by one goroutine.
type Deflate struct {
	w   *flate.Writer
	out bytes.Buffer
	r   io.ReadCloser
	in  bytes.Reader
	raw []byte // the message being inflated, with tail appended
}

// NewDeflate returns a Deflate at flate.BestSpeed.
func NewDeflate() *Deflate {
	w, err := flate.NewWriter(nil, flate.BestSpeed)
	if err != nil {
		panic(err) // only for an invalid level
	}
	return &Deflate{w: w, r: flate.NewReader(bytes.NewReader(nil))}
}

// Compress returns the compressed form of p, valid until the next call.
func (d *Deflate) Compress(p []byte) []byte {
	d.out.Reset()
	d.w.Reset(&d.out)
	d.w.Write(p)
	d.w.Flush()
	b := d.out.Bytes()
	return b[:len(b)-len(tail)]
}

// Inflate appends the inflated form of the compressed message p to dst.
func (d *Deflate) Inflate(dst, p []byte) ([]byte, error) {
	d.raw = append(append(d.raw[:0], p...), tail...)
	d.in.Reset(d.raw)
	d.r.(flate.Resetter).Reset(&d.in, nil)
	buf := bytes.NewBuffer(dst)
	_, err := io.Copy(buf, d.r)
	if err == io.ErrUnexpectedEOF {
		err = nil // the stream ends with a sync flush, not a final block
	}
	return buf.Bytes(), err
}
