package http2

// streamState is a stream's place in the RFC 9113 §5.1 life cycle as the server sees it.
// Idle streams have no Stream; closed ones leave the Conn's table at once.
type streamState uint8

const (
	stateOpen streamState = iota
	stateHalfClosedRemote
	stateHalfClosedLocal
	stateClosed
)

// Stream is one request-response exchange on a Conn. The Conn creates it when a request's
// field section is complete and hands it to Handler.OnRequest; its exported fields are the
// decoded request and stay valid for the caller after the stream ends. Only the goroutine
// that drives the Conn may touch a Stream.
type Stream struct {
	// ID is the stream identifier, odd because clients open streams.
	ID uint32
	// Method, Scheme, Authority and Path are the request pseudo-header fields (Scheme and
	// Path are empty for CONNECT).
	Method, Scheme, Authority, Path string
	// Header holds the regular request fields in the order received, names lowercase.
	Header []Field
	// ContentLength is the request's content-length, or -1 when it sent none. The Conn has
	// checked it against the DATA received.
	ContentLength int64
	// Priority is the RFC 9218 priority from the priority field or a later PRIORITY_UPDATE.
	Priority Priority
	// Value is the caller's own per-stream state; the Conn never looks at it.
	Value any

	state      streamState
	sendWindow int64  // octets of DATA the peer lets us send; may go negative on SETTINGS
	recvWindow int64  // octets of DATA the peer may still send before a WINDOW_UPDATE
	unconsumed int64  // delivered through OnData, not yet passed to Conn.Consumed
	credit     int64  // consumed by the application, not yet announced by WINDOW_UPDATE
	dataRecv   int64  // DATA payload received, for the content-length check
	headersOut uint8  // 0 none sent, 1 an informational response sent, 2 final headers sent
	blocked    bool   // WriteData left bytes unsent; OnWritable is owed
	pending    bool   // complete request not yet given to OnRequest (delivered at the end of Feed)
	feed       uint32 // Conn.feeds when the stream opened: a reset in the same Feed is rapid
}

// BodyDone reports whether the client has finished sending (END_STREAM received): no more
// OnData or OnTrailers calls follow for this stream.
func (s *Stream) BodyDone() bool {
	return s.state == stateHalfClosedRemote || s.state == stateClosed
}

// ResponseDone reports whether the response has been completed (END_STREAM sent).
func (s *Stream) ResponseDone() bool {
	return s.state == stateHalfClosedLocal || s.state == stateClosed
}

// closeRemote records END_STREAM from the client.
func (s *Stream) closeRemote() {
	if s.state == stateHalfClosedLocal {
		s.state = stateClosed
	} else {
		s.state = stateHalfClosedRemote
	}
}

// closeLocal records END_STREAM sent by the server.
func (s *Stream) closeLocal() {
	if s.state == stateHalfClosedRemote {
		s.state = stateClosed
	} else {
		s.state = stateHalfClosedLocal
	}
}
