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

// Frame is one frame read by Reader.ReadFrame, or one part of a frame read by
// Reader.ReadPart.
type Frame struct {
	// Fin is set on the last frame of a message and on every control frame.
	Fin bool
	// More is set by ReadPart when more payload of this frame follows in later parts; the
	// frame (and, with Fin, the message) ends with the part that has More clear.
	More bool
	// Opcode is the frame's opcode as sent (OpContinuation for later fragments).
	Opcode Opcode
	// Message is the opcode of the message a data frame belongs to (OpText or OpBinary);
	// for a control frame it equals Opcode.
	Message Opcode
	// Compressed is set on every data frame of a message compressed with
	// permessage-deflate (RSV1 on its first frame). The payloads of such a message are
	// deflate data: the caller collects them and inflates the message once Fin is seen.
	Compressed bool
	// Remaining is, with ReadPart, how many payload bytes of this frame are still to come
	// after this part (More is set when it is not 0); with ReadFrame it is 0.
	Remaining int64
	// Payload is the unmasked payload (with ReadPart, the part of it that has arrived), a
	// view into the buffer given to ReadFrame or ReadPart (which is unmasked in place).
	Payload []byte
	// CloseCode is the status code of a close frame, or CloseNoStatus (1005) when it had
	// no payload. CloseReason is its reason (valid UTF-8), a view into Payload.
	CloseCode   uint16
	CloseReason []byte
}

// Reader reads the frames of one connection and enforces RFC 6455 §5 and the message
// limit across them. Set the exported fields before the first read. A Reader is owned by
// the loop of its connection; it holds no buffer.
type Reader struct {
	// Role is the role of the endpoint reading: RoleServer expects masked frames,
	// RoleClient unmasked ones.
	Role Role
	// Compression is set when permessage-deflate was negotiated; RSV1 is then allowed on
	// the first frame of a data message.
	Compression bool

	// The fields are ordered to pack the struct into 48 bytes (TestReaderSize).
	inMsg      bool   // inside a fragmented data message
	compressed bool   // that message is compressed
	pending    bool   // ReadFrame ended in ErrNeedMore after a complete frame header
	inFrame    bool   // ReadPart is inside a data frame's payload
	frameFin   bool   // that frame's FIN bit
	msgOp      Opcode // the message's opcode

	// MaxMessageBytes bounds a message's payload, summed over its fragments, 0 for
	// DefaultMaxMessageBytes, negative for no limit. For a compressed message it bounds
	// the decompressed size (the Decompressor checks it) and, with 1/8 plus 64 bytes of
	// slack, the compressed bytes too.
	MaxMessageBytes int64

	text    utf8State // UTF-8 state after the payload validated so far
	peek    utf8State // UTF-8 state after the first peekOff bytes of the pending payload
	frameOp Opcode    // the opcode of the frame ReadPart is inside
	keyPos  uint8     // key offset of its next payload byte
	key     [4]byte   // the masking key of the current frame (zero when unmasked)
	peekOff int32     // payload bytes of the pending frame validated by peekText
	size    int64     // payload bytes of the current message so far
	remain  int64     // payload bytes of ReadPart's frame not yet returned
}

// InMessage reports whether a fragmented data message has started and not ended.
func (r *Reader) InMessage() bool { return r.inMsg || r.inFrame }

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
//
// ReadFrame holds a frame's bytes in the caller's buffer until the whole frame is there;
// ReadPart does not. The two may be mixed at frame boundaries; while ReadPart is inside a
// frame, ReadFrame continues it as ReadPart does.
func (r *Reader) ReadFrame(buf []byte) (Frame, int, error) {
	if r.inFrame {
		return r.ReadPart(buf)
	}
	f, hdr, err := r.header(buf)
	if err != nil {
		return f, 0, err
	}
	checkText := f.Message == OpText && !f.Compressed
	length := f.Remaining
	f.Remaining = 0
	if int64(len(buf)-hdr) < length {
		if checkText {
			if err := r.peekText(buf[hdr:], r.key); err != nil {
				return f, 0, err
			}
		}
		return f, 0, ErrNeedMore
	}
	n := hdr + int(length)
	f.Payload = buf[hdr:n]
	if r.key != ([4]byte{}) {
		maskBytes(r.key, 0, f.Payload)
	}
	if f.Opcode.IsControl() {
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
			st, off = r.peek, int(r.peekOff)
		}
		if st.feed(f.Payload[off:]) >= 0 || f.Fin && !st.complete() {
			return f, 0, ErrInvalidUTF8
		}
		r.text = st
	}
	r.pending = false
	r.size += length
	r.endFrame(f.Fin, f.Message, f.Compressed)
	return f, n, nil
}

// ReadPart reads the next part of a frame from the start of buf, so that no data frame
// has to be held whole: once a data frame's header has arrived, each call returns the
// payload bytes that buf holds (none when only the header has arrived) with More set
// until the frame's last byte. Control frames (at most 131 bytes) are returned whole, as
// ReadFrame returns them. It returns ErrNeedMore only when it can make no progress: a
// header or a control frame is incomplete, or buf is empty inside a frame; and the same
// *ProtocolError as ReadFrame would, as early. Each part's payload is unmasked in place and
// checked (UTF-8 of uncompressed text) before it is returned.
func (r *Reader) ReadPart(buf []byte) (Frame, int, error) {
	n := 0
	if r.inFrame && len(buf) == 0 {
		return Frame{}, 0, ErrNeedMore
	}
	if !r.inFrame {
		f, hdr, err := r.header(buf)
		if err != nil || f.Opcode.IsControl() {
			return r.ReadFrame(buf)
		}
		r.pending = false // a ReadFrame that stopped inside this frame is superseded
		r.inFrame, r.frameFin, r.frameOp, r.keyPos, r.remain = true, f.Fin, f.Opcode, 0, f.Remaining
		r.msgOp, r.compressed = f.Message, f.Compressed
		r.size += f.Remaining
		n = hdr
	}
	f := Frame{Fin: r.frameFin, Opcode: r.frameOp, Message: r.msgOp, Compressed: r.compressed}
	take := int(min(r.remain, int64(len(buf)-n)))
	f.Payload = buf[n : n+take]
	if r.key != ([4]byte{}) {
		maskBytes(r.key, int(r.keyPos), f.Payload)
	}
	r.keyPos = uint8((int(r.keyPos) + take) & 3)
	r.remain -= int64(take)
	f.More, f.Remaining = r.remain > 0, r.remain
	if f.Message == OpText && !f.Compressed {
		if r.text.feed(f.Payload) >= 0 || !f.More && f.Fin && !r.text.complete() {
			return f, 0, ErrInvalidUTF8
		}
	}
	if !f.More {
		r.inFrame = false
		r.endFrame(f.Fin, f.Message, f.Compressed)
	}
	return f, n + take, nil
}

// endFrame updates the message state after a data frame's last payload byte.
func (r *Reader) endFrame(fin bool, op Opcode, compressed bool) {
	if fin {
		r.inMsg, r.size, r.text = false, 0, utf8State{}
	} else {
		r.inMsg, r.msgOp, r.compressed = true, op, compressed
	}
}

// header parses and checks the frame header at the start of buf. It returns the frame
// without payload (Remaining holding the payload length), the header's size, and leaves
// the masking key in r.key.
func (r *Reader) header(buf []byte) (Frame, int, error) {
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
	f.Remaining = length

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

	r.key = [4]byte{}
	if masked {
		if len(buf) < hdr+4 {
			return f, 0, ErrNeedMore
		}
		copy(r.key[:], buf[hdr:])
		hdr += 4
	}
	return f, hdr, nil
}

// peekText validates the part of a pending text payload that has arrived, still masked,
// continuing from where the previous call stopped. Past 1 GiB of pending payload it stops
// looking (the whole frame is still validated when it is complete).
func (r *Reader) peekText(have []byte, key [4]byte) error {
	if len(have) > 1<<30 {
		have = have[:1<<30]
	}
	if !r.pending || int(r.peekOff) > len(have) {
		r.pending, r.peek, r.peekOff = true, r.text, 0
	}
	if r.peek.feedMasked(have[r.peekOff:], key, int(r.peekOff)) >= 0 {
		return ErrInvalidUTF8
	}
	r.peekOff = int32(len(have))
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
