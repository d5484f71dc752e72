// Package websocket implements the WebSocket protocol (RFC 6455) and its permessage-deflate
// extension (RFC 7692) without doing any I/O: callers hand it bytes and it reports how many
// it consumed and what it found, or that it needs more. It has no goroutines, timers or
// sockets; the server integration owns those (see docs/websocket.md).
//
// # Opening handshake
//
// Handshake checks a request view (Request: method, Host, a Header accessor; FromHTTP1 makes
// one from an http1.Request without allocating, MapHeader and Fields cover other sources)
// against HandshakeOptions and returns either an Accepted, whose AppendResponse is the 101
// response to write, or a *HandshakeError with the status, extra header fields and reason of
// the refusal: 405 for a method other than GET, 400 for HTTP/1.0, a missing websocket token
// in Upgrade or upgrade token in Connection, a Sec-WebSocket-Key that is not the base64 of 16
// bytes, or a missing Host; 426 with Sec-WebSocket-Version: 13 for any version but 13; 403
// for an Origin the policy refuses. The default Origin policy accepts only the origin whose
// host and port are those of the Host field (cross-site WebSocket hijacking is refused);
// AllowedOrigins replaces it. A subprotocol is selected from the server's list in the
// server's order of preference. permessage-deflate is negotiated when
// HandshakeOptions.Deflate is set: the first valid offer is accepted and invalid offers are
// declined, never refused (RFC 7692 §5).
//
// # Frames
//
// Reader.ReadFrame reads one frame from the start of a buffer and returns a Frame whose
// payload is unmasked in place, the number of bytes consumed, and nil; or ErrNeedMore; or a
// *ProtocolError carrying the close code to send: 1002 for framing violations (masking
// against the role, reserved bits and opcodes, control frames over 125 bytes or fragmented,
// continuation without a message or a new message inside one, a 64-bit length with its top
// bit set, an invalid close code or a 1-byte close payload), 1007 for text or close reasons
// that are not UTF-8, and 1009 for a message over MaxMessageBytes. A Reader carries the
// fragmentation and UTF-8 state across frames, so control frames may be interleaved with
// fragments and a character may be split between fragments. Results never depend on how
// the input was split; errors are reported as soon as the bytes showing them arrive (an
// invalid byte in a text payload fails before the rest of its frame arrives).
//
// Reader.ReadPart reads the same frames in parts: once a data frame's header has arrived it
// returns whatever payload the buffer holds, so the caller never keeps more than a header
// (14 bytes) or a control frame (131 bytes) unconsumed, however large the frame. It gives
// the same frames and errors as ReadFrame, as early.
//
// AppendFrame, AppendFrameHeader and AppendClose append frames to a caller's buffer: the
// server role writes them unmasked (nil mask), the client role masks them with a key the
// caller draws per frame.
//
// # Compression
//
// Compressor and Decompressor are the two halves of permessage-deflate. A compressed
// message's frames are collected and inflated whole with Decompressor.Inflate, which checks
// the message limit while inflating (a decompression bomb stops at the limit, having grown
// the output by at most limit+1 bytes) and validates text as it is produced. Context
// takeover is per call: when the connection keeps its own context in a direction it holds
// a Compressor (sending) or a 32 KiB Window (receiving); otherwise, and for every
// decompression, it borrows a Compressor or Decompressor from its loop's DeflatePool for
// one message and holds none while idle.
//
// # Ownership
//
// Every type here is owned by one event loop: Reader and any held Compressor or Window
// belong to their connection's loop, and a DeflatePool to its loop. Nothing
// is safe for concurrent use. Views returned (Frame.Payload, Request fields) are valid only
// while the caller's buffer is.
package websocket
