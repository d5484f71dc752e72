package http2

import (
	"errors"
	"strconv"
)

// ErrCode is an HTTP/2 error code as carried by RST_STREAM and GOAWAY (RFC 9113 §7).
type ErrCode uint32

// The error codes of RFC 9113 §7.
const (
	ErrCodeNo                 ErrCode = 0x0
	ErrCodeProtocol           ErrCode = 0x1
	ErrCodeInternal           ErrCode = 0x2
	ErrCodeFlowControl        ErrCode = 0x3
	ErrCodeSettingsTimeout    ErrCode = 0x4
	ErrCodeStreamClosed       ErrCode = 0x5
	ErrCodeFrameSize          ErrCode = 0x6
	ErrCodeRefusedStream      ErrCode = 0x7
	ErrCodeCancel             ErrCode = 0x8
	ErrCodeCompression        ErrCode = 0x9
	ErrCodeConnect            ErrCode = 0xa
	ErrCodeEnhanceYourCalm    ErrCode = 0xb
	ErrCodeInadequateSecurity ErrCode = 0xc
	ErrCodeHTTP11Required     ErrCode = 0xd
)

var errCodeNames = [...]string{
	"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
	"STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
	"CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
}

// String returns the RFC name of the code, or "ERR_CODE_0x…" for an unknown one.
func (c ErrCode) String() string {
	if int(c) < len(errCodeNames) {
		return errCodeNames[c]
	}
	return "ERR_CODE_0x" + strconv.FormatUint(uint64(c), 16)
}

// ConnError is an error whose blast radius is the whole connection: the Conn sends GOAWAY
// with Code and accepts no further input. Reason is a short human-readable cause.
type ConnError struct {
	Code   ErrCode
	Reason string
}

func (e *ConnError) Error() string {
	return "http2: connection error " + e.Code.String() + ": " + e.Reason
}

// StreamError is an error confined to one stream: the Conn sends RST_STREAM with Code for
// StreamID and the connection carries on.
type StreamError struct {
	StreamID uint32
	Code     ErrCode
	Reason   string
}

func (e *StreamError) Error() string {
	return "http2: stream " + strconv.FormatUint(uint64(e.StreamID), 10) + " error " +
		e.Code.String() + ": " + e.Reason
}

// ErrNeedMore reports that the input ends before the frame does. It is not a protocol
// error: the caller reads more bytes and calls again with the same bytes plus the new ones.
var ErrNeedMore = errors.New("http2: need more data")

func connErr(code ErrCode, reason string) *ConnError { return &ConnError{Code: code, Reason: reason} }

func streamErr(id uint32, code ErrCode, reason string) *StreamError {
	return &StreamError{StreamID: id, Code: code, Reason: reason}
}
