package http2

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"

	"golang.org/x/net/http2/hpack"
)

// statusText holds ":status" values so that encoding a status does not allocate.
var statusText [600]string

func init() {
	for i := 100; i < len(statusText); i++ {
		statusText[i] = strconv.Itoa(i)
	}
}

// sendable returns the stream streamID if the server may still send on it.
func (c *Conn) sendable(streamID uint32) (*Stream, error) {
	if c.err != nil {
		return nil, c.err
	}
	s := c.streams[streamID]
	if s == nil || s.ResponseDone() {
		return nil, ErrStreamClosed
	}
	return s, nil
}

// WriteHeaders queues the response field section for a stream: status (100…599) and
// fields, ending the response when endStream is set. Informational responses (1xx, such as
// 103 Early Hints) may come any number of times before the final one, and never end the
// stream. Field names are sent lowercase; connection-specific fields (connection,
// keep-alive, proxy-connection, transfer-encoding, upgrade) are dropped as RFC 9113 §8.2.2
// requires. The error is ErrStreamClosed, or the connection's error.
func (c *Conn) WriteHeaders(streamID uint32, status int, fields []Field, endStream bool) error {
	s, err := c.sendable(streamID)
	if err != nil {
		return err
	}
	if status < 100 || status >= len(statusText) || s.headersOut == 2 {
		return ErrStreamClosed
	}
	informational := status < 200
	if informational {
		endStream = false
	}
	c.beginBlock()
	_ = c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText[status]})
	c.encodeFields(fields)
	if informational {
		s.headersOut = 1
	} else {
		s.headersOut = 2
	}
	c.emitBlock(s, endStream)
	return nil
}

// WriteTrailers queues the trailer section, which ends the response. Pseudo-header fields
// are not allowed in it and are dropped.
func (c *Conn) WriteTrailers(streamID uint32, fields []Field) error {
	s, err := c.sendable(streamID)
	if err != nil {
		return err
	}
	if s.headersOut != 2 {
		return ErrStreamClosed
	}
	c.beginBlock()
	c.encodeFields(fields)
	c.emitBlock(s, true)
	return nil
}

// commonLower maps the canonical spelling of common response field names (as net/http
// and server.Header write them) to their HTTP/2 lowercase form, so that encoding them
// does not allocate.
var commonLower = map[string]string{}

func init() {
	for _, n := range [...]string{"accept-ranges", "access-control-allow-origin", "age", "cache-control",
		"content-disposition", "content-encoding", "content-language", "content-length", "content-location",
		"content-range", "content-security-policy", "content-type", "date", "etag", "expires", "last-modified",
		"link", "location", "retry-after", "server", "set-cookie", "strict-transport-security", "vary",
		"via", "www-authenticate", "x-content-type-options", "x-frame-options", "x-request-id"} {
		b := []byte(n)
		for i := range b {
			if i == 0 || b[i-1] == '-' {
				b[i] -= 'a' - 'A'
			}
		}
		commonLower[string(b)] = n
	}
	commonLower["ETag"] = "etag"
	commonLower["WWW-Authenticate"] = "www-authenticate"
}

// lowerName returns name in lowercase, without allocating for common field names.
func lowerName(name string) string {
	if l, ok := commonLower[name]; ok {
		return l
	}
	return strings.ToLower(name)
}

// encodeFields HPACK-encodes fields into the block under construction.
func (c *Conn) encodeFields(fields []Field) {
	for _, f := range fields {
		name := f.Name
		if name == "" || name[0] == ':' {
			continue
		}
		if hasUpper(name) {
			name = lowerName(name)
		}
		switch name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			continue
		}
		_ = c.enc.WriteField(hpack.HeaderField{Name: name, Value: f.Value})
	}
}

// beginBlock reserves room in the output for the HEADERS frame header of a field block the
// encoder is about to write behind it.
func (c *Conn) beginBlock() {
	c.grow()
	c.blockStart = len(c.out)
	c.out = append(c.out, make([]byte, HeaderLen)...)
}

// endBlock writes the frame header in front of the encoded block, or re-frames the block
// as HEADERS plus CONTINUATION when it is larger than the client's SETTINGS_MAX_FRAME_SIZE.
func (c *Conn) endBlock(id uint32, endStream bool) {
	block := c.out[c.blockStart+HeaderLen:]
	if len(block) > int(c.peerMaxFrame) {
		c.out = AppendHeaders(c.out[:c.blockStart], id, bytes.Clone(block), endStream, c.peerMaxFrame)
		return
	}
	fl := FlagEndHeaders
	if endStream {
		fl |= FlagEndStream
	}
	AppendFrameHeader(c.out[c.blockStart:c.blockStart], uint32(len(block)), FrameHeaders, fl, id)
}

// emitBlock finishes the block for s and applies END_STREAM.
func (c *Conn) emitBlock(s *Stream, endStream bool) {
	c.endBlock(s.ID, endStream)
	if endStream {
		c.endLocal(s)
	}
}

// endLocal records that the server ended s.
func (c *Conn) endLocal(s *Stream) {
	s.closeLocal()
	if s.blocked {
		s.blocked = false
		c.blocked--
	}
	c.maybeDrop(s)
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// WriteData queues as much of p as the stream and connection send windows and the output
// cap (Config.MaxOutputBuffered) allow, in DATA frames no larger than the client's
// SETTINGS_MAX_FRAME_SIZE, and returns how many octets it took. END_STREAM is sent only when
// endStream is set and all of p was taken (an empty p with endStream always goes). When
// n < len(p) the stream gets OnWritable once it may send again and the caller resumes with
// the rest. The error is ErrStreamClosed, or the connection's error.
func (c *Conn) WriteData(streamID uint32, p []byte, endStream bool) (n int, err error) {
	s, err := c.sendable(streamID)
	if err != nil {
		return 0, err
	}
	if s.headersOut != 2 {
		return 0, ErrStreamClosed
	}
	for n < len(p) && !c.holdData {
		room := min(int64(len(p)-n), s.sendWindow, c.connSendWindow,
			int64(c.cfg.MaxOutputBuffered-c.pending()), int64(c.peerMaxFrame))
		if room <= 0 {
			break
		}
		c.grow()
		c.lastData = len(c.out)
		c.out = AppendData(c.out, s.ID, p[n:n+int(room)], endStream && n+int(room) == len(p))
		n += int(room)
		s.sendWindow -= room
		c.connSendWindow -= room
		c.wuCredit = min(c.wuCredit+2, c.cfg.MaxSmallWindowUpdates)
	}
	switch {
	case n < len(p):
		if !s.blocked {
			s.blocked = true
			c.blocked++
		}
	case endStream:
		if len(p) == 0 && !c.endLastData(s.ID) {
			c.grow()
			c.out = AppendData(c.out, s.ID, nil, true)
		}
		c.endLocal(s)
	}
	return n, nil
}

// endLastData sets END_STREAM on the DATA frame of stream id that ends the pending
// output, when there is one that has not been handed out yet: a body written whole
// and then ended goes as one frame, not a frame and an empty one.
func (c *Conn) endLastData(id uint32) bool {
	i := c.lastData
	if i < c.outOff || i+HeaderLen > len(c.out) {
		return false
	}
	h := c.out[i : i+HeaderLen]
	n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	if i+HeaderLen+n != len(c.out) || FrameType(h[3]) != FrameData || h[4] != 0 ||
		binary.BigEndian.Uint32(h[5:])&MaxWindow != id {
		return false
	}
	h[4] = byte(FlagEndStream)
	return true
}

// SendWindow returns the send windows a DATA frame of the stream needs: the stream's
// own (0 for a stream that is not open) and the connection's. A caller that sees a
// stream wait tells by them whose window holds it: the client's for that stream alone,
// or the connection's (or neither: output room, a peer that does not read).
func (c *Conn) SendWindow(streamID uint32) (stream, conn int64) {
	if s := c.streams[streamID]; s != nil {
		stream = s.sendWindow
	}
	return stream, c.connSendWindow
}

// ResetStream abandons a stream from the server side with RST_STREAM code (CANCEL or
// INTERNAL_ERROR typically). No OnStreamReset follows for it.
func (c *Conn) ResetStream(streamID uint32, code ErrCode) {
	s := c.streams[streamID]
	if s == nil || c.err != nil {
		return
	}
	c.grow()
	c.out = AppendRSTStream(c.out, streamID, code)
	c.countReset()
	c.dropStream(s)
	c.remember(streamID, true)
}

// Consumed returns n octets of a stream's request body, delivered by OnData, to flow
// control: the application calls it when it has used them, and the client may then send
// that much more. Windows are replenished by WINDOW_UPDATE once half of a window has been
// consumed. Octets of a stream that has ended are reclaimed by the Conn itself; Consumed
// for it does nothing.
func (c *Conn) Consumed(streamID uint32, n int) {
	s := c.streams[streamID]
	if s == nil || n <= 0 || c.err != nil {
		return
	}
	k := min(int64(n), s.unconsumed)
	s.unconsumed -= k
	s.credit += k
	c.connCredit += k
	c.flushCredit(s)
}

// flushCredit sends WINDOW_UPDATE for the connection, and for s when not nil, once the
// credit owed reaches half of the window.
func (c *Conn) flushCredit(s *Stream) {
	if c.err != nil {
		return
	}
	if c.connCredit > 0 && 2*c.connCredit >= int64(c.cfg.ConnWindow) {
		if c.control() != nil {
			return
		}
		c.out = AppendWindowUpdate(c.out, 0, uint32(c.connCredit))
		c.connRecvWindow += c.connCredit
		c.connCredit = 0
	}
	if s != nil && s.credit > 0 && !s.BodyDone() && 2*s.credit >= int64(c.cfg.InitialStreamWindow) {
		if c.control() != nil {
			return
		}
		c.out = AppendWindowUpdate(c.out, s.ID, uint32(s.credit))
		s.recvWindow += s.credit
		s.credit = 0
	}
}

// wake clears s's blocked mark and tells the handler it may send.
func (c *Conn) wake(s *Stream) {
	s.blocked = false
	c.blocked--
	c.h.OnWritable(s)
}

// wakeBlocked offers the send windows to the streams waiting for them, most urgent first
// (RFC 9218 urgency 0 … 7), while there is window and output room left.
func (c *Conn) wakeBlocked() {
	for u := uint8(0); u <= 7 && c.blocked > 0; u++ {
		for _, s := range c.streams {
			if c.connSendWindow <= 0 || c.pending() >= c.cfg.MaxOutputBuffered || c.err != nil {
				return
			}
			if s.blocked && s.Priority.Urgency == u && s.sendWindow > 0 {
				c.wake(s)
			}
		}
	}
}
