package http2

import "encoding/binary"

// FrameType is the type octet of a frame header (RFC 9113 §6).
type FrameType uint8

// The frame types of RFC 9113 §6, and PRIORITY_UPDATE of RFC 9218 §7.1.
const (
	FrameData           FrameType = 0x0
	FrameHeaders        FrameType = 0x1
	FramePriority       FrameType = 0x2
	FrameRSTStream      FrameType = 0x3
	FrameSettings       FrameType = 0x4
	FramePushPromise    FrameType = 0x5
	FramePing           FrameType = 0x6
	FrameGoAway         FrameType = 0x7
	FrameWindowUpdate   FrameType = 0x8
	FrameContinuation   FrameType = 0x9
	FramePriorityUpdate FrameType = 0x10
)

// Flags is the flags octet of a frame header. Each flag means something only for the frame
// types that define it.
type Flags uint8

// Frame flags (RFC 9113 §6).
const (
	FlagEndStream  Flags = 0x1  // DATA, HEADERS
	FlagAck        Flags = 0x1  // SETTINGS, PING
	FlagEndHeaders Flags = 0x4  // HEADERS, PUSH_PROMISE, CONTINUATION
	FlagPadded     Flags = 0x8  // DATA, HEADERS, PUSH_PROMISE
	FlagPriority   Flags = 0x20 // HEADERS
)

// Has reports whether every bit of g is set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// Frame sizes and window bounds of RFC 9113.
const (
	// HeaderLen is the size of the fixed frame header.
	HeaderLen = 9
	// MinMaxFrameSize is the initial and smallest legal SETTINGS_MAX_FRAME_SIZE.
	MinMaxFrameSize = 1 << 14
	// MaxMaxFrameSize is the largest legal SETTINGS_MAX_FRAME_SIZE.
	MaxMaxFrameSize = 1<<24 - 1
	// MaxWindow is the largest flow-control window, 2^31-1.
	MaxWindow = 1<<31 - 1
	// InitialWindow is the flow-control window every stream and the connection start with.
	InitialWindow = 65535
)

// SettingID identifies one SETTINGS parameter.
type SettingID uint16

// The SETTINGS parameters of RFC 9113 §6.5.2, RFC 8441 and RFC 9218.
const (
	SettingHeaderTableSize       SettingID = 0x1
	SettingEnablePush            SettingID = 0x2
	SettingMaxConcurrentStreams  SettingID = 0x3
	SettingInitialWindowSize     SettingID = 0x4
	SettingMaxFrameSize          SettingID = 0x5
	SettingMaxHeaderListSize     SettingID = 0x6
	SettingEnableConnectProtocol SettingID = 0x8
	SettingNoRFC7540Priorities   SettingID = 0x9
)

// Setting is one SETTINGS parameter and its value.
type Setting struct {
	ID  SettingID
	Val uint32
}

// PriorityParam is the RFC 7540 priority carried by PRIORITY and HEADERS frames. RFC 9113
// deprecates it; the Conn parses it only to validate it.
type PriorityParam struct {
	StreamDep uint32
	Exclusive bool
	Weight    uint8
}

// Frame is one decoded frame. Its byte slices alias the buffer given to ReadFrame and are
// valid only as long as that buffer is. Which fields mean something depends on Type:
//
//   - DATA: Data is the payload without padding; Length still counts the padding, and flow
//     control charges Length.
//   - HEADERS, CONTINUATION: Data is the field block fragment; HEADERS may carry Priority
//     (when FlagPriority is set).
//   - PRIORITY: Priority.
//   - RST_STREAM: Code.
//   - SETTINGS: Data holds the raw parameters; see NumSettings and Setting.
//   - PUSH_PROMISE: PromisedID, Data is the field block fragment.
//   - PING: Data is the 8 opaque octets.
//   - GOAWAY: LastStreamID, Code, Data is the debug data.
//   - WINDOW_UPDATE: Increment.
//   - PRIORITY_UPDATE: PromisedID is the prioritized stream, Data the priority field value.
//   - any other type: Data is the payload, which the receiver ignores.
type Frame struct {
	Type         FrameType
	Flags        Flags
	StreamID     uint32
	Length       uint32
	Data         []byte
	Priority     PriorityParam
	Code         ErrCode
	LastStreamID uint32
	PromisedID   uint32
	Increment    uint32
}

// NumSettings returns how many parameters a SETTINGS frame carries.
func (f *Frame) NumSettings() int { return len(f.Data) / 6 }

// Setting returns the i-th parameter of a SETTINGS frame.
func (f *Frame) Setting(i int) Setting {
	p := f.Data[i*6:]
	return Setting{ID: SettingID(binary.BigEndian.Uint16(p)), Val: binary.BigEndian.Uint32(p[2:])}
}

// ReadFrame decodes the frame at the start of buf, accepting payloads of up to maxFrameSize
// octets (the SETTINGS_MAX_FRAME_SIZE this endpoint advertised). It returns ErrNeedMore,
// with consumed 0, while buf holds less than a whole frame.
//
// It applies every check of RFC 9113 §4 and §6 that depends on the frame alone: lengths,
// padding, stream identifiers that must or must not be zero, and SETTINGS values. A
// violation whose scope is the connection is returned as *ConnError with consumed 0. A
// violation confined to one stream (a PRIORITY frame of the wrong length, a stream depending
// on itself, a zero WINDOW_UPDATE increment on a stream) is returned as *StreamError
// together with the decoded frame and its consumed length, so that the caller can still
// feed a HEADERS field block to its HPACK decoder and carry on with the next frame. Checks
// that need connection state (stream states, CONTINUATION sequencing) belong to Conn.
func ReadFrame(buf []byte, maxFrameSize uint32) (f Frame, consumed int, err error) {
	if len(buf) < HeaderLen {
		return f, 0, ErrNeedMore
	}
	f.Length = uint32(buf[0])<<16 | uint32(buf[1])<<8 | uint32(buf[2])
	f.Type = FrameType(buf[3])
	f.Flags = Flags(buf[4])
	f.StreamID = binary.BigEndian.Uint32(buf[5:]) & MaxWindow
	if f.Length > maxFrameSize {
		return Frame{}, 0, connErr(ErrCodeFrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE")
	}
	end := HeaderLen + int(f.Length)
	if len(buf) < end {
		return Frame{}, 0, ErrNeedMore
	}
	p := buf[HeaderLen:end]
	if err := f.parsePayload(p); err != nil {
		if _, ok := err.(*StreamError); ok {
			return f, end, err
		}
		return Frame{}, 0, err
	}
	return f, end, nil
}

// parsePayload fills the type-specific fields of f from its payload p.
func (f *Frame) parsePayload(p []byte) error {
	switch f.Type {
	case FrameData:
		if f.StreamID == 0 {
			return connErr(ErrCodeProtocol, "DATA on stream 0")
		}
		d, err := unpad(f, p)
		f.Data = d
		return err
	case FrameHeaders:
		if f.StreamID == 0 {
			return connErr(ErrCodeProtocol, "HEADERS on stream 0")
		}
		d, err := unpad(f, p)
		if err != nil {
			return err
		}
		if f.Flags.Has(FlagPriority) {
			if len(d) < 5 {
				return connErr(ErrCodeFrameSize, "HEADERS too short for its priority fields")
			}
			f.Priority = parsePriority(d)
			d = d[5:]
		}
		f.Data = d
		if f.Flags.Has(FlagPriority) && f.Priority.StreamDep == f.StreamID {
			return streamErr(f.StreamID, ErrCodeProtocol, "stream depends on itself")
		}
		return nil
	case FramePriority:
		if f.StreamID == 0 {
			return connErr(ErrCodeProtocol, "PRIORITY on stream 0")
		}
		if len(p) != 5 {
			return streamErr(f.StreamID, ErrCodeFrameSize, "PRIORITY length is not 5")
		}
		f.Priority = parsePriority(p)
		if f.Priority.StreamDep == f.StreamID {
			return streamErr(f.StreamID, ErrCodeProtocol, "stream depends on itself")
		}
		return nil
	case FrameRSTStream:
		if f.StreamID == 0 {
			return connErr(ErrCodeProtocol, "RST_STREAM on stream 0")
		}
		if len(p) != 4 {
			return connErr(ErrCodeFrameSize, "RST_STREAM length is not 4")
		}
		f.Code = ErrCode(binary.BigEndian.Uint32(p))
		return nil
	case FrameSettings:
		return f.parseSettings(p)
	case FramePushPromise:
		if f.StreamID == 0 {
			return connErr(ErrCodeProtocol, "PUSH_PROMISE on stream 0")
		}
		d, err := unpad(f, p)
		if err != nil {
			return err
		}
		if len(d) < 4 {
			return connErr(ErrCodeFrameSize, "PUSH_PROMISE too short")
		}
		f.PromisedID = binary.BigEndian.Uint32(d) & MaxWindow
		f.Data = d[4:]
		return nil
	case FramePing:
		if f.StreamID != 0 {
			return connErr(ErrCodeProtocol, "PING on a stream")
		}
		if len(p) != 8 {
			return connErr(ErrCodeFrameSize, "PING length is not 8")
		}
		f.Data = p
		return nil
	case FrameGoAway:
		if f.StreamID != 0 {
			return connErr(ErrCodeProtocol, "GOAWAY on a stream")
		}
		if len(p) < 8 {
			return connErr(ErrCodeFrameSize, "GOAWAY too short")
		}
		f.LastStreamID = binary.BigEndian.Uint32(p) & MaxWindow
		f.Code = ErrCode(binary.BigEndian.Uint32(p[4:]))
		f.Data = p[8:]
		return nil
	case FrameWindowUpdate:
		if len(p) != 4 {
			return connErr(ErrCodeFrameSize, "WINDOW_UPDATE length is not 4")
		}
		f.Increment = binary.BigEndian.Uint32(p) & MaxWindow
		if f.Increment == 0 {
			if f.StreamID == 0 {
				return connErr(ErrCodeProtocol, "WINDOW_UPDATE increment 0 on the connection")
			}
			return streamErr(f.StreamID, ErrCodeProtocol, "WINDOW_UPDATE increment 0")
		}
		return nil
	case FrameContinuation:
		if f.StreamID == 0 {
			return connErr(ErrCodeProtocol, "CONTINUATION on stream 0")
		}
		f.Data = p
		return nil
	case FramePriorityUpdate:
		if f.StreamID != 0 {
			return connErr(ErrCodeProtocol, "PRIORITY_UPDATE on a stream")
		}
		if len(p) < 4 {
			return connErr(ErrCodeFrameSize, "PRIORITY_UPDATE too short")
		}
		f.PromisedID = binary.BigEndian.Uint32(p) & MaxWindow
		if f.PromisedID == 0 {
			return connErr(ErrCodeProtocol, "PRIORITY_UPDATE for stream 0")
		}
		f.Data = p[4:]
		return nil
	}
	f.Data = p
	return nil
}

// parseSettings validates a SETTINGS payload (RFC 9113 §6.5) and keeps it raw in f.Data.
func (f *Frame) parseSettings(p []byte) error {
	if f.StreamID != 0 {
		return connErr(ErrCodeProtocol, "SETTINGS on a stream")
	}
	if f.Flags.Has(FlagAck) {
		if len(p) != 0 {
			return connErr(ErrCodeFrameSize, "SETTINGS ACK with a payload")
		}
		return nil
	}
	if len(p)%6 != 0 {
		return connErr(ErrCodeFrameSize, "SETTINGS length is not a multiple of 6")
	}
	f.Data = p
	for i := range f.NumSettings() {
		s := f.Setting(i)
		switch s.ID {
		case SettingEnablePush, SettingEnableConnectProtocol, SettingNoRFC7540Priorities:
			if s.Val > 1 {
				return connErr(ErrCodeProtocol, "SETTINGS boolean parameter is neither 0 nor 1")
			}
		case SettingInitialWindowSize:
			if s.Val > MaxWindow {
				return connErr(ErrCodeFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1")
			}
		case SettingMaxFrameSize:
			if s.Val < MinMaxFrameSize || s.Val > MaxMaxFrameSize {
				return connErr(ErrCodeProtocol, "SETTINGS_MAX_FRAME_SIZE out of range")
			}
		}
	}
	return nil
}

// unpad strips the Pad Length octet and the padding from a DATA, HEADERS or PUSH_PROMISE
// payload when FlagPadded is set.
func unpad(f *Frame, p []byte) ([]byte, error) {
	if !f.Flags.Has(FlagPadded) {
		return p, nil
	}
	if len(p) < 1 {
		return nil, connErr(ErrCodeFrameSize, "padded frame without a Pad Length")
	}
	pad := int(p[0])
	if pad >= len(p) {
		return nil, connErr(ErrCodeProtocol, "padding exceeds the payload")
	}
	return p[1 : len(p)-pad], nil
}

func parsePriority(p []byte) PriorityParam {
	v := binary.BigEndian.Uint32(p)
	return PriorityParam{StreamDep: v & MaxWindow, Exclusive: v>>31 == 1, Weight: p[4]}
}
