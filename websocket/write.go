package websocket

import "encoding/binary"

// AppendFrameHeader appends the header of a frame with a payload of length bytes. A nil
// mask writes an unmasked frame (the server role); a client passes a fresh random key
// per frame and masks the payload itself (MaskBytes) or uses AppendFrame. The header
// alone lets one payload be shared by many connections' frames (writev).
func AppendFrameHeader(dst []byte, fin bool, op Opcode, rsv1 bool, length int, mask *[4]byte) []byte {
	b0 := byte(op & 0x0F)
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	var m byte
	if mask != nil {
		m = 0x80
	}
	switch {
	case length <= 125:
		dst = append(dst, b0, m|byte(length))
	case length <= 0xFFFF:
		dst = append(dst, b0, m|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(length))
	default:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(length))
	}
	if mask != nil {
		dst = append(dst, mask[:]...)
	}
	return dst
}

// AppendFrame appends a whole frame: header and payload, masked with mask when it is not
// nil. A control frame's payload is cut to MaxControlPayload bytes. rsv1 marks the first
// frame of a compressed message.
func AppendFrame(dst []byte, fin bool, op Opcode, rsv1 bool, payload []byte, mask *[4]byte) []byte {
	if op.IsControl() && len(payload) > MaxControlPayload {
		payload = payload[:MaxControlPayload]
	}
	dst = AppendFrameHeader(dst, fin, op, rsv1, len(payload), mask)
	start := len(dst)
	dst = append(dst, payload...)
	if mask != nil {
		maskBytes(*mask, 0, dst[start:])
	}
	return dst
}

// AppendClose appends a close frame. code 0 sends an empty payload (the peer sees 1005);
// otherwise the payload is code followed by reason, cut at a UTF-8 boundary to fit 125
// bytes. The caller must pass a code that ValidCloseCode accepts.
func AppendClose(dst []byte, code uint16, reason string, mask *[4]byte) []byte {
	var p [MaxControlPayload]byte
	if code == 0 {
		return AppendFrame(dst, true, OpClose, false, nil, mask)
	}
	binary.BigEndian.PutUint16(p[:], code)
	r := reason
	if len(r) > MaxControlPayload-2 {
		r = r[:MaxControlPayload-2]
		for len(r) > 0 && !validUTF8([]byte(r)) {
			r = r[:len(r)-1]
		}
	}
	n := 2 + copy(p[2:], r)
	return AppendFrame(dst, true, OpClose, false, p[:n], mask)
}

// MaskBytes XORs b with key in place, b[0] taking key[pos%4], and returns the key offset
// of the byte after b, so that a payload may be masked in pieces.
func MaskBytes(key [4]byte, pos int, b []byte) int {
	maskBytes(key, pos, b)
	return (pos + len(b)) & 3
}
