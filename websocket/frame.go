package websocket

import "encoding/binary"

// Opcode is a frame opcode (RFC 6455 §5.2).
type Opcode uint8

// The opcodes RFC 6455 defines; the others are reserved.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong or reserved 0xB-0xF).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// Role says which end of the connection an endpoint is: clients mask their frames,
// servers must not (RFC 6455 §5.1).
type Role uint8

// The two roles.
const (
	RoleServer Role = iota
	RoleClient
)

// MaxControlPayload is the largest payload of a control frame (RFC 6455 §5.5).
const MaxControlPayload = 125

// DefaultMaxMessageBytes is the message size limit of a Reader whose MaxMessageBytes is 0.
const DefaultMaxMessageBytes = 1 << 20

// Frame is one frame read by Reader.ReadFrame.
type Frame struct {
	// Fin is set on the last frame of a message and on every control frame.
	Fin bool
	// Opcode is the frame's opcode as sent (OpContinuation for later fragments).
	Opcode Opcode
	// Message is the opcode of the message a data frame belongs to (OpText or OpBinary);
	// for a control frame it equals Opcode.
	Message Opcode
	// Compressed is set on every data frame of a message compressed with
	// permessage-deflate (RSV1 on its first frame). The payloads of such a message are
	// deflate data: the caller collects them and inflates the message once Fin is seen.
	Compressed bool
	// Payload is the unmasked payload, a view into the buffer given to ReadFrame (which is
	// unmasked in place).
	Payload []byte
	// CloseCode is the status code of a close frame, or CloseNoStatus (1005) when it had
	// no payload. CloseReason is its reason (valid UTF-8), a view into Payload.
	CloseCode   uint16
	CloseReason []byte
}

// Reader reads the frames of one connection and enforces RFC 6455 §5 and the message
// limit across them. Set the exported fields before the first ReadFrame. A Reader is owned
// by the loop of its connection; it holds no buffer.
type Reader struct {
	// Role is the role of the endpoint reading: RoleServer expects masked frames,
	// RoleClient unmasked ones.
	Role Role
	// Compression is set when permessage-deflate was negotiated; RSV1 is then allowed on
	// the first frame of a data message.
	Compression bool
	// MaxMessageBytes bounds a message's payload, summed over its fragments, 0 for
	// DefaultMaxMessageBytes, negative for no limit. For a compressed message it bounds
	// the decompressed size (the Decompressor checks it) and, with 1/8 plus 64 bytes of
	// slack, the compressed bytes too.
	MaxMessageBytes int64

	inMsg      bool      // inside a fragmented data message
	msgOp      Opcode    // its opcode
	compressed bool      // it is compressed
	size       int64     // its payload bytes so far
	text       utf8State // UTF-8 state at the end of its last complete frame
	pending    bool      // the last call ended in ErrNeedMore after a complete frame header
	peek       utf8State // UTF-8 state after the first peekOff bytes of the pending payload
	peekOff    int
}

// InMessage reports whether a fragmented data message has started and not ended.
func (r *Reader) InMessage() bool { return r.inMsg }

// MessageLimit returns the effective message limit (MaxMessageBytes with its default),
// or -1 for none: the limit to pass to Decompressor.Inflate.
func (r *Reader) MessageLimit() int64 {
	switch {
	case r.MaxMessageBytes == 0:
		return DefaultMaxMessageBytes
	case r.MaxMessageBytes < 0:
		return -1
	}
	return r.MaxMessageBytes
}

// ReadFrame reads one frame from the start of buf. It returns the frame, the number of
// bytes it occupies, and nil; or ErrNeedMore when buf holds only part of a frame (the
// caller calls again with those bytes followed by more, possibly in another buffer); or a
// *ProtocolError after which the connection must be closed with its Code.
//
// Violations are reported as soon as the bytes showing them have arrived, before the
// rest of the frame: bad header bits and opcodes with the first two bytes, an oversized
// message with the length field, and invalid UTF-8 in an uncompressed text message with
// the first invalid byte, even in the middle of a frame. The payload is unmasked in place,
// so buf must be writable; bytes past the returned count are not changed.
func (r *Reader) ReadFrame(buf []byte) (Frame, int, error) {
	var f Frame
	if len(buf) < 2 {
		return f, 0, ErrNeedMore
	}
	b0, b1 := buf[0], buf[1]
	f.Fin = b0&0x80 != 0
	rsv1, rsv23 := b0&0x40 != 0, b0&0x30 != 0
	f.Opcode = Opcode(b0 & 0x0F)
	masked := b1&0x80 != 0
	length := int64(b1 & 0x7F)

	switch f.Opcode {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return f, 0, ErrReservedOpcode
	}
	control := f.Opcode.IsControl()
	switch {
	case rsv23, rsv1 && (control || !r.Compression || f.Opcode == OpContinuation):
		return f, 0, ErrReservedBits
	case control && !f.Fin:
		return f, 0, ErrControlFragmented
	case control && length > MaxControlPayload:
		return f, 0, ErrControlTooLong
	case f.Opcode == OpContinuation && !r.inMsg:
		return f, 0, ErrBadContinuation
	case !control && f.Opcode != OpContinuation && r.inMsg:
		return f, 0, ErrExpectContinue
	case r.Role == RoleServer && !masked:
		return f, 0, ErrUnmaskedClient
	case r.Role == RoleClient && masked:
		return f, 0, ErrMaskedServer
	}

	hdr := 2
	switch length {
	case 126:
		if len(buf) < 4 {
			return f, 0, ErrNeedMore
		}
		length, hdr = int64(binary.BigEndian.Uint16(buf[2:])), 4
	case 127:
		if len(buf) < 10 {
			return f, 0, ErrNeedMore
		}
		u := binary.BigEndian.Uint64(buf[2:])
		if u>>63 != 0 {
			return f, 0, ErrLengthMSB
		}
		length, hdr = int64(u), 10
	}

	f.Message, f.Compressed = f.Opcode, rsv1
	if f.Opcode == OpContinuation {
		f.Message, f.Compressed = r.msgOp, r.compressed
	}
	if !control {
		if lim := r.MessageLimit(); lim >= 0 {
			if f.Compressed {
				lim += lim/8 + 64
			}
			if length > lim-r.size {
				return f, 0, ErrMessageTooBig
			}
		}
	}

	var key [4]byte
	if masked {
		if len(buf) < hdr+4 {
			return f, 0, ErrNeedMore
		}
		copy(key[:], buf[hdr:])
		hdr += 4
	}
	checkText := f.Message == OpText && !f.Compressed
	if int64(len(buf)-hdr) < length {
		if checkText {
			if err := r.peekText(buf[hdr:], key); err != nil {
				return f, 0, err
			}
		}
		return f, 0, ErrNeedMore
	}

	n := hdr + int(length)
	f.Payload = buf[hdr:n]
	if masked {
		maskBytes(key, 0, f.Payload)
	}
	if control {
		r.pending = false
		if f.Opcode == OpClose {
			if err := parseClose(&f); err != nil {
				return f, 0, err
			}
		}
		return f, n, nil
	}
	if checkText {
		st, off := r.text, 0
		if r.pending {
			st, off = r.peek, r.peekOff
		}
		if st.feed(f.Payload[off:]) >= 0 || f.Fin && !st.complete() {
			return f, 0, ErrInvalidUTF8
		}
		r.text = st
	}
	r.pending = false
	r.size += length
	if f.Fin {
		r.inMsg, r.size, r.text = false, 0, utf8State{}
	} else {
		r.inMsg, r.msgOp, r.compressed = true, f.Message, f.Compressed
	}
	return f, n, nil
}

// peekText validates the part of a pending text payload that has arrived, still masked,
// continuing from where the previous call stopped.
func (r *Reader) peekText(have []byte, key [4]byte) error {
	if !r.pending {
		r.pending, r.peek, r.peekOff = true, r.text, 0
	}
	if r.peek.feedMasked(have[r.peekOff:], key, r.peekOff) >= 0 {
		return ErrInvalidUTF8
	}
	r.peekOff = len(have)
	return nil
}

// parseClose validates a close frame's payload (RFC 6455 §5.5.1, §7.4) and fills in its
// code and reason.
func parseClose(f *Frame) error {
	switch len(f.Payload) {
	case 0:
		f.CloseCode = CloseNoStatus
		return nil
	case 1:
		return ErrCloseLength
	}
	f.CloseCode = binary.BigEndian.Uint16(f.Payload)
	if !ValidCloseCode(f.CloseCode) {
		return ErrCloseCode
	}
	f.CloseReason = f.Payload[2:]
	if !validUTF8(f.CloseReason) {
		return ErrCloseReason
	}
	return nil
}

// maskBytes XORs b with key, b[0] taking key[pos%4].
func maskBytes(key [4]byte, pos int, b []byte) {
	pos &= 3
	if len(b) >= 16 {
		var k [8]byte
		for i := range k {
			k[i] = key[(pos+i)&3]
		}
		k64 := binary.LittleEndian.Uint64(k[:])
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
}
