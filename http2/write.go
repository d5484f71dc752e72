package http2

import "encoding/binary"

// AppendFrameHeader appends the 9-octet header of a frame with a payload of length octets.
// The caller appends the payload itself. The reserved bit of streamID is cleared.
func AppendFrameHeader(dst []byte, length uint32, t FrameType, flags Flags, streamID uint32) []byte {
	return append(dst, byte(length>>16), byte(length>>8), byte(length), byte(t), byte(flags),
		byte(streamID>>24)&0x7f, byte(streamID>>16), byte(streamID>>8), byte(streamID))
}

// AppendData appends one DATA frame carrying p, with END_STREAM when endStream is set. The
// caller keeps p within the peer's SETTINGS_MAX_FRAME_SIZE and the flow-control windows.
func AppendData(dst []byte, streamID uint32, p []byte, endStream bool) []byte {
	var fl Flags
	if endStream {
		fl = FlagEndStream
	}
	dst = AppendFrameHeader(dst, uint32(len(p)), FrameData, fl, streamID)
	return append(dst, p...)
}

// AppendHeaders appends a HEADERS frame carrying the encoded field block, followed by as
// many CONTINUATION frames as needed to keep every frame within maxFrameSize octets. The
// last frame carries END_HEADERS; HEADERS carries END_STREAM when endStream is set.
func AppendHeaders(dst []byte, streamID uint32, block []byte, endStream bool, maxFrameSize uint32) []byte {
	if maxFrameSize < MinMaxFrameSize {
		maxFrameSize = MinMaxFrameSize
	}
	t := FrameHeaders
	var fl Flags
	if endStream {
		fl = FlagEndStream
	}
	for {
		n := len(block)
		if n > int(maxFrameSize) {
			n = int(maxFrameSize)
		} else {
			fl |= FlagEndHeaders
		}
		dst = AppendFrameHeader(dst, uint32(n), t, fl, streamID)
		dst = append(dst, block[:n]...)
		block = block[n:]
		if len(block) == 0 {
			return dst
		}
		t, fl = FrameContinuation, 0
	}
}

// AppendSettings appends a SETTINGS frame with the given parameters, or a SETTINGS ACK
// (which carries none) when ack is set.
func AppendSettings(dst []byte, ack bool, settings ...Setting) []byte {
	if ack {
		return AppendFrameHeader(dst, 0, FrameSettings, FlagAck, 0)
	}
	dst = AppendFrameHeader(dst, uint32(6*len(settings)), FrameSettings, 0, 0)
	for _, s := range settings {
		dst = binary.BigEndian.AppendUint16(dst, uint16(s.ID))
		dst = binary.BigEndian.AppendUint32(dst, s.Val)
	}
	return dst
}

// AppendPing appends a PING frame, or its acknowledgement when ack is set.
func AppendPing(dst []byte, ack bool, data [8]byte) []byte {
	var fl Flags
	if ack {
		fl = FlagAck
	}
	dst = AppendFrameHeader(dst, 8, FramePing, fl, 0)
	return append(dst, data[:]...)
}

// AppendGoAway appends a GOAWAY frame naming the last stream this endpoint may process.
func AppendGoAway(dst []byte, lastStreamID uint32, code ErrCode, debug []byte) []byte {
	dst = AppendFrameHeader(dst, uint32(8+len(debug)), FrameGoAway, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, lastStreamID&MaxWindow)
	dst = binary.BigEndian.AppendUint32(dst, uint32(code))
	return append(dst, debug...)
}

// AppendRSTStream appends a RST_STREAM frame.
func AppendRSTStream(dst []byte, streamID uint32, code ErrCode) []byte {
	dst = AppendFrameHeader(dst, 4, FrameRSTStream, 0, streamID)
	return binary.BigEndian.AppendUint32(dst, uint32(code))
}

// AppendWindowUpdate appends a WINDOW_UPDATE frame; streamID 0 addresses the connection.
func AppendWindowUpdate(dst []byte, streamID, increment uint32) []byte {
	dst = AppendFrameHeader(dst, 4, FrameWindowUpdate, 0, streamID)
	return binary.BigEndian.AppendUint32(dst, increment&MaxWindow)
}

// AppendPriority appends a PRIORITY frame. Servers never need one; it exists for tests and
// clients.
func AppendPriority(dst []byte, streamID uint32, p PriorityParam) []byte {
	dst = AppendFrameHeader(dst, 5, FramePriority, 0, streamID)
	v := p.StreamDep & MaxWindow
	if p.Exclusive {
		v |= 1 << 31
	}
	dst = binary.BigEndian.AppendUint32(dst, v)
	return append(dst, p.Weight)
}
