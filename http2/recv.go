package http2

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/gale-server/gale/http1"
	"golang.org/x/net/http2/hpack"
)

// isIdle reports whether id names a stream the client has not opened yet. Even ids are
// server streams, which this server never opens, so they are always idle.
func (c *Conn) isIdle(id uint32) bool { return id%2 == 0 || id > c.maxClientID }

// resetByUs marks a closedRing entry of a stream the server reset.
const resetByUs = 1 << 31

// recentlyClosed reports whether id is among the last streams that closed, and whether
// the server was the one that reset it.
func (c *Conn) recentlyClosed(id uint32) (closed, byUs bool) {
	for _, v := range c.closedRing {
		if v&MaxWindow == id {
			return true, v&resetByUs != 0
		}
	}
	return false, false
}

// closedBefore reports whether id is a recently closed stream.
func (c *Conn) closedBefore(id uint32) bool {
	closed, _ := c.recentlyClosed(id)
	return closed
}

// remember records a stream that left the table (or never entered it).
func (c *Conn) remember(id uint32, byUs bool) {
	if byUs {
		id |= resetByUs
	}
	for i, v := range c.closedRing {
		if v&MaxWindow == id&MaxWindow {
			c.closedRing[i] = id
			return
		}
	}
	c.closedRing[c.closedNext] = id
	c.closedNext = (c.closedNext + 1) % len(c.closedRing)
}

// dropStream takes s out of the table, returning its unconsumed octets to the connection
// window since the application will not consume them any more.
func (c *Conn) dropStream(s *Stream) {
	if c.streams[s.ID] != s {
		return
	}
	delete(c.streams, s.ID)
	if len(c.streams) == 0 {
		c.streams = nil
	}
	if s.blocked {
		s.blocked = false
		c.blocked--
	}
	c.remember(s.ID, false)
	s.state = stateClosed
	if s.unconsumed > 0 {
		c.connCredit += s.unconsumed
		s.unconsumed = 0
	}
	c.flushCredit(nil)
}

// maybeDrop removes s once both directions are closed.
func (c *Conn) maybeDrop(s *Stream) {
	if s.state == stateClosed {
		c.dropStream(s)
	}
}

// resetStream answers a stream error: RST_STREAM, the stream leaves the table (with
// OnStreamReset if the application knew it), and a glitch is counted.
func (c *Conn) resetStream(se *StreamError) error {
	if err := c.control(); err != nil {
		return err
	}
	c.out = AppendRSTStream(c.out, se.StreamID, se.Code)
	c.countReset()
	if s := c.streams[se.StreamID]; s != nil {
		c.dropStream(s)
		if !s.pending {
			c.h.OnStreamReset(s, se.Code, false)
		}
	}
	c.remember(se.StreamID, true)
	if se.Code == ErrCodeRefusedStream {
		return c.glitch(GlitchRefusedStream)
	}
	return c.glitch(GlitchStreamError)
}

// chargeData takes a DATA frame's full length (padding included) from the connection
// receive window.
func (c *Conn) chargeData(f *Frame) error {
	if int64(f.Length) > c.connRecvWindow {
		return connErr(ErrCodeFlowControl, "DATA beyond the connection window")
	}
	c.connRecvWindow -= int64(f.Length)
	return nil
}

func (c *Conn) onData(f *Frame) error {
	s := c.streams[f.StreamID]
	if s == nil && c.isIdle(f.StreamID) {
		return connErr(ErrCodeProtocol, "DATA on an idle stream")
	}
	if err := c.chargeData(f); err != nil {
		return err
	}
	end := f.Flags.Has(FlagEndStream)
	// Counted whatever the stream's state: on a stream that has ended such a frame is
	// dropped without an answer, so it would otherwise cost nothing to send forever.
	if len(f.Data) == 0 && !end {
		if err := c.flood(&c.empties, c.cfg.MaxEmptyFrames, GlitchEmptyFrames, "empty DATA flood"); err != nil {
			return err
		}
	}
	if s == nil || s.BodyDone() {
		// The application will never see these octets: give them back at once.
		c.connCredit += int64(f.Length)
		c.flushCredit(nil)
		if _, byUs := c.recentlyClosed(f.StreamID); s == nil && byUs {
			return nil // in flight when the server reset the stream (RFC 9113 §5.1 closed)
		}
		return c.resetStream(streamErr(f.StreamID, ErrCodeStreamClosed, "DATA after END_STREAM"))
	}
	if int64(f.Length) > s.recvWindow {
		c.connCredit += int64(f.Length)
		c.flushCredit(nil)
		return c.resetStream(streamErr(f.StreamID, ErrCodeFlowControl, "DATA beyond the stream window"))
	}
	s.recvWindow -= int64(f.Length)
	if pad := int64(f.Length) - int64(len(f.Data)); pad > 0 {
		c.connCredit += pad
		s.credit += pad
		c.flushCredit(s)
	}
	s.dataRecv += int64(len(f.Data))
	if s.ContentLength >= 0 && (s.dataRecv > s.ContentLength || end && s.dataRecv != s.ContentLength) {
		c.connCredit += int64(len(f.Data))
		c.flushCredit(nil)
		return c.resetStream(streamErr(f.StreamID, ErrCodeProtocol, "body length differs from content-length"))
	}
	s.unconsumed += int64(len(f.Data))
	if end {
		s.closeRemote()
	}
	c.h.OnData(s, f.Data, end)
	c.maybeDrop(s)
	return nil
}

func (c *Conn) onHeaders(f *Frame, se *StreamError) error {
	id := f.StreamID
	if id%2 == 0 {
		return connErr(ErrCodeProtocol, "HEADERS on a server stream id")
	}
	c.hdrStream, c.hdrEndStream, c.hdrErr = id, f.Flags.Has(FlagEndStream), nil
	c.hdrBytes, c.hdrFrames = 0, 0
	c.hdrKind = hdrDiscard
	s := c.streams[id]
	switch {
	case s != nil && s.BodyDone():
		c.hdrErr = streamErr(id, ErrCodeStreamClosed, "HEADERS after END_STREAM")
	case s != nil:
		c.hdrKind = hdrTrailers
	case id <= c.maxClientID && c.closedBefore(id):
		return connErr(ErrCodeStreamClosed, "HEADERS on a closed stream")
	case id <= c.maxClientID:
		return connErr(ErrCodeProtocol, "stream id not above the last one opened")
	case c.shutdown == 2 && id > c.goAwayLast:
		c.maxClientID = id // ignored after the final GOAWAY (RFC 9113 §6.8)
	case len(c.streams) >= int(c.cfg.MaxConcurrentStreams):
		c.maxClientID = id
		c.hdrErr = streamErr(id, ErrCodeRefusedStream, "too many concurrent streams")
	default:
		c.maxClientID = id
		c.hdrKind = hdrRequest
	}
	if se != nil {
		c.hdrKind, c.hdrErr = hdrDiscard, se
	}
	c.hdrs.reset(c.hdrKind == hdrTrailers)
	c.dec.SetEmitEnabled(c.hdrKind != hdrDiscard)
	return c.fragment(f)
}

func (c *Conn) onContinuation(f *Frame) error {
	if c.hdrStream == 0 || f.StreamID != c.hdrStream {
		return connErr(ErrCodeProtocol, "CONTINUATION without a field block in progress")
	}
	c.hdrFrames++
	if c.hdrFrames > c.cfg.MaxContinuationFrames {
		c.countGlitch(GlitchHeaderBlock)
		return connErr(ErrCodeEnhanceYourCalm, "too many CONTINUATION frames")
	}
	return c.fragment(f)
}

// fragment feeds one field block fragment to the HPACK decoder and finishes the block at
// END_HEADERS.
func (c *Conn) fragment(f *Frame) error {
	end := f.Flags.Has(FlagEndHeaders)
	if len(f.Data) == 0 && !end {
		if err := c.flood(&c.empties, c.cfg.MaxEmptyFrames, GlitchEmptyFrames, "empty field block fragment flood"); err != nil {
			return err
		}
	}
	c.hdrBytes += len(f.Data)
	if c.hdrBytes > c.cfg.MaxHeaderBlockBytes {
		c.countGlitch(GlitchHeaderBlock)
		return connErr(ErrCodeEnhanceYourCalm, "field block too large")
	}
	if _, err := c.dec.Write(f.Data); err != nil {
		return hpackErr(err)
	}
	if !end {
		return nil
	}
	if err := c.dec.Close(); err != nil {
		return hpackErr(err)
	}
	return c.finishBlock()
}

func hpackErr(err error) error {
	if errors.Is(err, hpack.ErrStringLength) {
		return connErr(ErrCodeCompression, "header string longer than the limit")
	}
	return connErr(ErrCodeCompression, "HPACK: "+err.Error())
}

// finishBlock acts on a complete field block.
func (c *Conn) finishBlock() error {
	id, h := c.hdrStream, &c.hdrs
	h.finish()
	fields := h.fields
	h.fields = nil // whoever takes them owns them; an idle Conn keeps no field slice
	c.hdrStream = 0
	c.dec.SetEmitEnabled(true)
	switch c.hdrKind {
	case hdrDiscard:
		if c.hdrErr != nil {
			return c.resetStream(c.hdrErr)
		}
		return nil
	case hdrTrailers:
		if s := c.streams[id]; s != nil {
			return c.finishTrailers(s, fields)
		}
		return nil
	}
	if h.tooLarge {
		return c.refuseTooLarge(id)
	}
	if h.err == "" && c.hdrEndStream && h.contentLength > 0 {
		h.fail("content-length without a body")
	}
	if h.err != "" {
		return c.resetStream(streamErr(id, ErrCodeProtocol, "malformed request: "+h.err))
	}
	s := &Stream{
		ID: id, Method: h.method, Scheme: h.scheme, Authority: h.authority, Path: h.path,
		Header: fields, ContentLength: h.contentLength, Priority: h.priority,
		sendWindow: c.peerInitialWindow, recvWindow: c.recvInitialWindow(),
	}
	if c.hdrEndStream {
		s.state = stateHalfClosedRemote
	}
	if c.streams == nil {
		c.streams = make(map[uint32]*Stream)
	}
	c.streams[id] = s
	if c.ctr != nil {
		c.ctr.StreamsOpened.Add(1)
	}
	if c.hdrEndStream {
		s.feed, s.pending = c.feeds, true
		c.newReqs = append(c.newReqs, s)
		return nil
	}
	s.feed = c.feeds
	c.h.OnRequest(s)
	return nil
}

func (c *Conn) finishTrailers(s *Stream, tr []Field) error {
	h := &c.hdrs
	switch {
	case h.tooLarge:
		return c.resetStream(streamErr(s.ID, ErrCodeProtocol, "trailers too large"))
	case h.err != "":
		return c.resetStream(streamErr(s.ID, ErrCodeProtocol, "malformed trailers: "+h.err))
	case !c.hdrEndStream:
		return c.resetStream(streamErr(s.ID, ErrCodeProtocol, "second field block without END_STREAM"))
	case s.ContentLength >= 0 && s.dataRecv != s.ContentLength:
		return c.resetStream(streamErr(s.ID, ErrCodeProtocol, "body length differs from content-length"))
	}
	s.closeRemote()
	c.h.OnTrailers(s, tr)
	c.maybeDrop(s)
	return nil
}

// Bodies of the 431 and 414 answers: the text gale's HTTP/1.1 answers to the same
// requests carry (the http1 parser's reasons after the status text).
var (
	headTooLongText = http1.StatusText(431) + ": header section too large\n"
	lineTooLongText = http1.StatusText(414) + ": request line too long\n"
)

// refuseTooLarge answers a request whose field section passed MaxHeaderListSize,
// MaxHeaderBytes or MaxHeaderFields with 431, or whose :method and :path passed
// MaxRequestLine with 414 (and RST_STREAM NO_ERROR if the client is still sending),
// counting a glitch. The answer carries the small text/plain body HTTP/1.1's has
// when the send windows let it go at once, else only the head.
func (c *Conn) refuseTooLarge(id uint32) error {
	if err := c.control(); err != nil {
		return err
	}
	c.beginBlock()
	status, text := "431", headTooLongText
	if c.hdrs.uriTooLong {
		status, text = "414", lineTooLongText
	}
	n := int64(len(text))
	withBody := n <= c.peerInitialWindow && n <= c.connSendWindow && n <= int64(c.peerMaxFrame)
	_ = c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	if withBody {
		_ = c.enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "text/plain; charset=utf-8"})
		_ = c.enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(text))})
	}
	c.endBlock(id, !withBody)
	if withBody {
		c.out = AppendData(c.out, id, []byte(text), true)
		c.connSendWindow -= n
	}
	if !c.hdrEndStream {
		c.out = AppendRSTStream(c.out, id, ErrCodeNo)
		c.countReset()
	}
	return c.glitch(GlitchHeaderList)
}

func (c *Conn) onRSTStream(f *Frame) error {
	s := c.streams[f.StreamID]
	if s == nil {
		if c.isIdle(f.StreamID) {
			return connErr(ErrCodeProtocol, "RST_STREAM on an idle stream")
		}
		if closed, byUs := c.recentlyClosed(f.StreamID); closed && !byUs {
			// The stream ended (answered at once, often in the same read as its
			// HEADERS) just before the client cancelled it: the rapid-reset attack
			// against a server that answers inline. A client that saw the whole
			// response has no reason to reset it, so this counts as early too.
			return c.flood(&c.resets, c.cfg.MaxRapidResets, GlitchRapidReset, "rapid reset")
		}
		// A stream the server reset, or one closed long ago: nothing to cancel. One
		// may cross the server's own RST_STREAM; a stream of them does nothing.
		return c.idleFrame("RST_STREAM flood on closed streams")
	}
	early := !s.ResponseDone() || s.feed == c.feeds
	if c.ctr != nil {
		c.ctr.ResetsReceived.Add(1)
	}
	c.dropStream(s)
	if s.pending {
		s.pending = false // never delivered: the Handler does not hear of it
	} else {
		c.h.OnStreamReset(s, f.Code, true)
	}
	if early {
		return c.flood(&c.resets, c.cfg.MaxRapidResets, GlitchRapidReset, "rapid reset")
	}
	return nil
}

func (c *Conn) onSettings(f *Frame) error {
	if f.Flags.Has(FlagAck) {
		if !c.settingsAckd {
			c.applyOwnSettings()
			return nil
		}
		return c.idleFrame("unsolicited SETTINGS ACK flood") // the server sends one SETTINGS
	}
	if err := c.flood(&c.settings, c.cfg.MaxSettings, GlitchSettings, "SETTINGS flood"); err != nil {
		return err
	}
	c.gotSettings = true
	opened, err := c.applyPeerSettings(f)
	if err != nil {
		return err
	}
	if err := c.control(); err != nil {
		return err
	}
	c.out = AppendSettings(c.out, true)
	if opened && c.blocked > 0 {
		c.wakeBlocked()
	}
	return nil
}

// applyPeerSettings takes the client's parameters from a validated SETTINGS frame (or an
// upgrade's HTTP2-Settings) and reports whether stream send windows grew.
func (c *Conn) applyPeerSettings(f *Frame) (opened bool, err error) {
	for i := range f.NumSettings() {
		st := f.Setting(i)
		switch st.ID {
		case SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(min(st.Val, DefaultHeaderTableSize))
		case SettingMaxFrameSize:
			c.peerMaxFrame = st.Val
		case SettingInitialWindowSize:
			delta := int64(st.Val) - c.peerInitialWindow
			for _, s := range c.streams {
				s.sendWindow += delta
				if s.sendWindow > MaxWindow {
					return false, connErr(ErrCodeFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window")
				}
			}
			c.peerInitialWindow = int64(st.Val)
			opened = opened || delta > 0
		}
	}
	return opened, nil
}

// recvInitialWindow is the receive window a new stream starts with: the advertised one once
// the client has acknowledged it, the protocol default before (RFC 9113 §6.9.2).
func (c *Conn) recvInitialWindow() int64 {
	if c.settingsAckd {
		return int64(c.cfg.InitialStreamWindow)
	}
	return InitialWindow
}

// applyOwnSettings takes effect when the client acknowledges the server's SETTINGS: open
// streams' receive windows move by the difference to the advertised window (possibly below
// zero), and the HPACK decoder's table may shrink to the advertised size.
func (c *Conn) applyOwnSettings() {
	c.settingsAckd = true
	delta := int64(c.cfg.InitialStreamWindow) - InitialWindow
	for _, s := range c.streams {
		s.recvWindow += delta
	}
	c.dec.SetAllowedMaxDynamicTableSize(c.cfg.HeaderTableSize)
}

func (c *Conn) onPing(f *Frame) error {
	if f.Flags.Has(FlagAck) {
		if c.shutdown == 1 && bytes.Equal(f.Data, shutdownPing[:]) {
			c.FinishShutdown()
			return nil
		}
		return c.idleFrame("unsolicited PING ACK flood")
	}
	if err := c.flood(&c.pings, c.cfg.MaxPings, GlitchPing, "PING flood"); err != nil {
		return err
	}
	if err := c.control(); err != nil {
		return err
	}
	c.out = AppendPing(c.out, true, [8]byte(f.Data))
	return nil
}

func (c *Conn) onWindowUpdate(f *Frame, se *StreamError) error {
	if f.StreamID != 0 && c.isIdle(f.StreamID) {
		return connErr(ErrCodeProtocol, "WINDOW_UPDATE on an idle stream")
	}
	if se != nil {
		return c.resetStream(se)
	}
	if f.Increment < 1024 && c.wuCredit > 0 {
		c.wuCredit-- // returns the window of a DATA frame we sent
	} else if f.Increment < 1024 {
		if err := c.flood(&c.wupdates, c.cfg.MaxSmallWindowUpdates, GlitchWindowUpdate, "WINDOW_UPDATE flood"); err != nil {
			return err
		}
	}
	if f.StreamID == 0 {
		c.connSendWindow += int64(f.Increment)
		if c.connSendWindow > MaxWindow {
			return connErr(ErrCodeFlowControl, "connection window above 2^31-1")
		}
		if c.blocked > 0 {
			c.wakeBlocked()
		}
		return nil
	}
	s := c.streams[f.StreamID]
	if s == nil {
		return nil
	}
	s.sendWindow += int64(f.Increment)
	if s.sendWindow > MaxWindow {
		return c.resetStream(streamErr(s.ID, ErrCodeFlowControl, "stream window above 2^31-1"))
	}
	if s.blocked && s.sendWindow > 0 && c.connSendWindow > 0 {
		c.wake(s)
	}
	return nil
}

func (c *Conn) onPriorityUpdate(f *Frame) error {
	if err := c.flood(&c.pri, c.cfg.MaxPriorityFrames, GlitchPriority, "PRIORITY_UPDATE flood"); err != nil {
		return err
	}
	if f.PromisedID%2 == 0 {
		return connErr(ErrCodeProtocol, "PRIORITY_UPDATE for a server stream")
	}
	if s := c.streams[f.PromisedID]; s != nil {
		s.Priority = ParsePriority(string(f.Data), DefaultPriority)
	}
	return nil
}
