package websocket

import (
	"errors"
	"strconv"
)

// ErrNeedMore reports that the input ends before the frame being read does. It is not a
// protocol error: the caller reads more bytes and calls again with the unconsumed bytes
// followed by the new ones.
var ErrNeedMore = errors.New("websocket: need more data")

// Close status codes of RFC 6455 §7.4.1 and the IANA registry.
const (
	CloseNormal          uint16 = 1000 // the purpose of the connection is fulfilled
	CloseGoingAway       uint16 = 1001 // server shutting down, browser leaving the page
	CloseProtocolError   uint16 = 1002 // a frame broke RFC 6455
	CloseUnsupportedData uint16 = 1003 // a data type the endpoint cannot accept
	CloseNoStatus        uint16 = 1005 // reported when a close frame had no code; never sent
	CloseAbnormal        uint16 = 1006 // reported when the connection dropped; never sent
	CloseInvalidPayload  uint16 = 1007 // text that is not UTF-8, or a bad compressed stream
	ClosePolicy          uint16 = 1008 // a policy violation (e.g. output high-water policy)
	CloseTooBig          uint16 = 1009 // a message over MaxMessageBytes
	CloseMandatoryExt    uint16 = 1010 // client only: an extension the server did not accept
	CloseInternalError   uint16 = 1011 // the server failed
	CloseServiceRestart  uint16 = 1012 // the server restarts
	CloseTryAgainLater   uint16 = 1013 // the server is overloaded
	CloseBadGateway      uint16 = 1014 // an upstream failed
	CloseTLSHandshake    uint16 = 1015 // reported when TLS failed; never sent
)

// ValidCloseCode reports whether code may appear in a close frame on the wire: 1000-1003,
// 1007-1014 (defined or registered), and 3000-4999 (libraries, frameworks, applications).
// 1004, 1005, 1006, 1015, the rest of 1000-2999, and everything below 1000 or above 4999
// are refused.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ProtocolError is a violation found in the peer's frames or messages. It is a
// connection-level error: the caller sends a close frame with Code (and, if it likes,
// Reason), stops reading data and closes the connection once the close handshake ends
// or times out.
type ProtocolError struct {
	// Code is the close code to send: 1002, 1007 or 1009.
	Code uint16
	// Reason is a short English description, at most 123 bytes, usable as the close
	// reason.
	Reason string
}

func (e *ProtocolError) Error() string {
	return "websocket: " + e.Reason + " (close " + strconv.Itoa(int(e.Code)) + ")"
}

// The protocol errors the Reader and Decompressor return. Each is a *ProtocolError.
var (
	ErrUnmaskedClient    = &ProtocolError{CloseProtocolError, "client frame not masked"}
	ErrMaskedServer      = &ProtocolError{CloseProtocolError, "server frame masked"}
	ErrReservedBits      = &ProtocolError{CloseProtocolError, "reserved bits set"}
	ErrReservedOpcode    = &ProtocolError{CloseProtocolError, "reserved opcode"}
	ErrControlTooLong    = &ProtocolError{CloseProtocolError, "control frame over 125 bytes"}
	ErrControlFragmented = &ProtocolError{CloseProtocolError, "fragmented control frame"}
	ErrBadContinuation   = &ProtocolError{CloseProtocolError, "continuation frame without a message"}
	ErrExpectContinue    = &ProtocolError{CloseProtocolError, "new data frame inside a fragmented message"}
	ErrLengthMSB         = &ProtocolError{CloseProtocolError, "64-bit length with the top bit set"}
	ErrCloseLength       = &ProtocolError{CloseProtocolError, "close frame with a 1-byte payload"}
	ErrCloseCode         = &ProtocolError{CloseProtocolError, "invalid close code"}
	ErrCloseReason       = &ProtocolError{CloseInvalidPayload, "close reason not UTF-8"}
	ErrInvalidUTF8       = &ProtocolError{CloseInvalidPayload, "text message not UTF-8"}
	ErrBadDeflate        = &ProtocolError{CloseInvalidPayload, "invalid compressed message"}
	ErrMessageTooBig     = &ProtocolError{CloseTooBig, "message over the size limit"}
)
