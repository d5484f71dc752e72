package wsproto

import (
	"encoding/binary"
	"errors"
)

// ErrShort is returned by ParseFrame when buf holds only the beginning of a frame.
var ErrShort = errors.New("wsproto: incomplete frame")

// ParseFrame reads one frame from the start of buf without I/O, for callers that do
// their own reads (bench/wsload's epoll client). It returns the frame, the bytes it
// occupies, and nil; ErrShort when more bytes are needed; or ErrTooLarge. A masked
// payload is unmasked in place, so buf must be writable; Payload aliases buf.
func ParseFrame(buf []byte) (Frame, int, error) {
	if len(buf) < 2 {
		return Frame{}, 0, ErrShort
	}
	f := Frame{Fin: buf[0]&0x80 != 0, Rsv1: buf[0]&0x40 != 0, Opcode: buf[0] & 0x0F}
	masked := buf[1]&0x80 != 0
	n, hdr := uint64(buf[1]&0x7F), 2
	switch n {
	case 126:
		if len(buf) < 4 {
			return Frame{}, 0, ErrShort
		}
		n, hdr = uint64(binary.BigEndian.Uint16(buf[2:])), 4
	case 127:
		if len(buf) < 10 {
			return Frame{}, 0, ErrShort
		}
		n, hdr = binary.BigEndian.Uint64(buf[2:]), 10
	}
	if n > MaxPayload {
		return Frame{}, 0, ErrTooLarge
	}
	var key [4]byte
	if masked {
		if len(buf) < hdr+4 {
			return Frame{}, 0, ErrShort
		}
		copy(key[:], buf[hdr:])
		hdr += 4
	}
	end := hdr + int(n)
	if len(buf) < end {
		return Frame{}, 0, ErrShort
	}
	f.Payload = buf[hdr:end]
	if masked {
		for i := range f.Payload {
			f.Payload[i] ^= key[i&3]
		}
	}
	return f, end, nil
}

// AppendMasked appends one final client frame with opcode and payload, masked with key.
// Unlike AppendFrame it draws no randomness: the caller supplies a fresh key per frame
// from its own generator (bench/wsload's epoll client keeps one per connection).
func AppendMasked(dst []byte, opcode byte, payload []byte, key [4]byte) []byte {
	return appendMasked(dst, 0x80|opcode, payload, key)
}

// appendMasked appends a frame with first byte b0 and payload masked with key.
func appendMasked(dst []byte, b0 byte, payload []byte, key [4]byte) []byte {
	dst = append(appendHeader(dst, b0, 0x80, len(payload)), key[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	for i := range payload {
		dst[start+i] ^= key[i&3]
	}
	return dst
}

// appendHeader appends a frame header's first byte b0 and the length field with the
// mask bit mbit (0 or 0x80).
func appendHeader(dst []byte, b0, mbit byte, n int) []byte {
	switch {
	case n < 126:
		return append(dst, b0, mbit|byte(n))
	case n <= 0xFFFF:
		return append(dst, b0, mbit|126, byte(n>>8), byte(n))
	}
	dst = append(dst, b0, mbit|127)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}
