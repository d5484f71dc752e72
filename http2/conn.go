package http2

import (
	"errors"

	"github.com/gale-server/gale/internal/os/pool"
	"golang.org/x/net/http2/hpack"
)

// Preface is the client connection preface that must open every HTTP/2 connection
// (RFC 9113 §3.4).
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// ErrStreamClosed is returned by the write methods for a stream that is not open for
// sending: unknown, reset, or already ended by the server.
var ErrStreamClosed = errors.New("http2: stream closed for writing")

// Handler receives the events of a Conn. Its methods run inside Conn.Feed (and, for
// OnWritable, inside the call that opened a window) on the goroutine that drives the Conn,
// and may call the Conn's write methods. A byte slice passed to a method is valid only
// during the call.
type Handler interface {
	// OnRequest delivers a stream whose request field section is complete and valid. If
	// s.BodyDone() the request has no body.
	OnRequest(s *Stream)
	// OnData delivers request body bytes; endStream marks the last of them (p may then be
	// empty). The application returns flow-control credit with Conn.Consumed once it has
	// used the bytes.
	OnData(s *Stream, p []byte, endStream bool)
	// OnTrailers delivers the request trailers, which end the request body.
	OnTrailers(s *Stream, trailers []Field)
	// OnStreamReset reports that a stream delivered by OnRequest ended abnormally: byPeer
	// when the client sent RST_STREAM, otherwise the Conn reset it (a stream error, or a
	// connection error ending every stream). The caller drops its state for the stream.
	OnStreamReset(s *Stream, code ErrCode, byPeer bool)
	// OnWritable reports that a stream whose WriteData sent less than asked may send again.
	OnWritable(s *Stream)
	// OnGoAway reports a GOAWAY from the client: it opens no more streams.
	OnGoAway(code ErrCode, debug []byte)
}

// hdrKind says what a field block in progress belongs to.
type hdrKind uint8

const (
	hdrRequest  hdrKind = iota // opens a new stream
	hdrTrailers                // trailers of an open stream
	hdrDiscard                 // decoded for HPACK state only, then hdrErr (if any) applies
)

// hpackSink is the io.Writer the HPACK encoder writes into: the field block goes straight
// into the output, behind the frame header that beginBlock reserved.
type hpackSink struct{ c *Conn }

func (w hpackSink) Write(p []byte) (int, error) {
	w.c.out = append(w.c.out, p...)
	return len(p), nil
}

// Conn is the server side of one HTTP/2 connection, without I/O: the caller feeds it the
// bytes read from the socket (Feed), writes out what it produces (Out, then Drained), and
// calls its write methods to respond. Events arrive through the Handler. A Conn is owned by
// one goroutine (the event loop of its connection); none of its methods may be called
// concurrently.
//
// When the connection is idle — no streams and the output drained — it holds no buffer
// besides the two HPACK dynamic tables.
type Conn struct {
	cfg        *Config // shared, read-only
	h          Handler
	dec        *hpack.Decoder
	enc        *hpack.Encoder
	blockStart int // offset in out of the frame header of the field block being encoded

	out    []byte // pending output from outOff on; nil when drained
	outOff int
	// lastData is the offset in out of the header of the DATA frame appended last,
	// while it is the tail of out and not yet drained (else -1): an END_STREAM that
	// follows it at once sets its flag instead of costing an empty frame.
	lastData int

	streams     map[uint32]*Stream // open and half-closed streams; nil when empty
	maxClientID uint32             // highest stream id the client has opened
	closedRing  [16]uint32         // recently closed stream ids (bit 31: the server reset it)
	closedNext  int
	blocked     int // streams with blocked set

	prefaceDone  bool
	holdData     bool // an h2c upgrade waits for the client preface before sending DATA
	gotSettings  bool
	settingsAckd bool // the client acknowledged our SETTINGS

	peerMaxFrame      uint32
	peerInitialWindow int64
	connSendWindow    int64
	connRecvWindow    int64
	connCredit        int64

	feeds   uint32    // Feed calls so far (Stream.feed)
	newReqs []*Stream // requests without body completed in this Feed, delivered when it returns

	hdrStream    uint32 // stream of the field block in progress, 0 when none
	hdrKind      hdrKind
	hdrEndStream bool
	hdrErr       *StreamError
	hdrBytes     int
	hdrFrames    int
	hdrs         requestHeaders

	shutdown   uint8  // 0 running, 1 first GOAWAY sent, 2 final GOAWAY sent
	goAwayLast uint32 // last stream id of the final GOAWAY
	peerGoAway bool
	err        error

	glitches                                        int          // over the connection's life (Glitches)
	glitchWin                                       floodCounter // this window's, against MaxGlitches
	ctr                                             *Counters    // nil: not counted (SetCounters)
	resets, pings, settings, wupdates, empties, pri floodCounter
	// wuCredit is how many small WINDOW_UPDATEs may still come back for DATA frames
	// we sent (two per frame: the stream's and the connection's, at most
	// MaxSmallWindowUpdates banked). Those return credit the client was asked to
	// spend, so they are not a flood; only the rest count against MaxSmallWindowUpdates.
	wuCredit int
}

var shutdownPing = [8]byte{'g', 'a', 'l', 'e', 'b', 'y', 'e', '!'}

// NewConn returns a server connection configured by cfg (zero fields take their defaults)
// and reporting to h. Its output already holds the server preface: SETTINGS and the
// connection WINDOW_UPDATE.
func NewConn(cfg Config, h Handler) *Conn { return NewSharedConn(cfg.Shared(), h) }

// NewSharedConn is NewConn with a configuration from Config.Shared, which the caller
// must not change afterwards: a server makes every connection of a listener from one,
// so that an idle connection does not carry its own copy.
func NewSharedConn(cfg *Config, h Handler) *Conn {
	c := &Conn{
		cfg:               cfg,
		h:                 h,
		peerMaxFrame:      MinMaxFrameSize,
		peerInitialWindow: InitialWindow,
		connSendWindow:    InitialWindow,
		lastData:          -1,
	}
	c.dec = hpack.NewDecoder(max(c.cfg.HeaderTableSize, DefaultHeaderTableSize), func(f hpack.HeaderField) {
		c.hdrs.add(f.Name, f.Value, c.cfg)
		if c.hdrs.tooLarge {
			c.dec.SetEmitEnabled(false)
		}
	})
	c.dec.SetMaxStringLength(c.cfg.MaxHeaderStringLength)
	c.enc = hpack.NewEncoder(hpackSink{c})
	settings := [...]Setting{
		{SettingMaxConcurrentStreams, c.cfg.MaxConcurrentStreams},
		{SettingInitialWindowSize, c.cfg.InitialStreamWindow},
		{SettingMaxFrameSize, c.cfg.MaxFrameSize},
		{SettingMaxHeaderListSize, c.cfg.MaxHeaderListSize},
		{SettingHeaderTableSize, c.cfg.HeaderTableSize},
		{SettingNoRFC7540Priorities, 1},
	}
	c.grow()
	c.out = AppendSettings(c.out, false, settings[:]...)
	c.connRecvWindow = int64(c.cfg.ConnWindow)
	if c.cfg.ConnWindow > InitialWindow {
		c.out = AppendWindowUpdate(c.out, 0, c.cfg.ConnWindow-InitialWindow)
	}
	return c
}

// Feed processes the bytes read from the connection and returns how many it consumed.
// Unconsumed bytes are the start of an incomplete frame: the caller keeps them and calls
// Feed again with them and what it reads next, so its input buffer must hold at least
// HeaderLen+Config.MaxFrameSize octets. A non-nil error is the connection error (a
// *ConnError) that ended the connection: its GOAWAY is in the output, which the caller
// drains before closing; every later call returns the same error.
//
// Requests without a body (HEADERS with END_STREAM) that complete during a Feed reach
// OnRequest when the Feed's frames have all been processed, in the order received; one
// the client resets within the same input never reaches the Handler at all (and counts
// as a rapid reset), so a pipelined HEADERS+RST_STREAM flood costs HPACK decoding only.
func (c *Conn) Feed(in []byte) (consumed int, err error) {
	c.feeds++
	consumed, _ = c.feed(in) // its error is c.err, which delivering may also set
	if len(c.newReqs) > 0 {
		c.deliverPending()
	}
	return consumed, c.err
}

// deliverPending hands the requests completed in this Feed to OnRequest, skipping those
// the client reset or the connection lost meanwhile.
func (c *Conn) deliverPending() {
	for i, s := range c.newReqs {
		c.newReqs[i] = nil
		if !s.pending {
			continue
		}
		s.pending = false
		if c.err == nil && c.streams[s.ID] == s {
			c.h.OnRequest(s)
		}
	}
	c.newReqs = c.newReqs[:0]
	if cap(c.newReqs) > 16 {
		c.newReqs = nil // a burst does not stay with an idle connection
	}
}

func (c *Conn) feed(in []byte) (consumed int, err error) {
	if c.err != nil {
		return 0, c.err
	}
	off := 0
	if !c.prefaceDone {
		n := min(len(in), len(Preface))
		if string(in[:n]) != Preface[:n] {
			return 0, c.fail(connErr(ErrCodeProtocol, "invalid connection preface"))
		}
		if n < len(Preface) {
			return 0, nil
		}
		off, c.prefaceDone = n, true
		if c.holdData {
			c.holdData = false
			c.wakeBlocked()
		}
	}
	for c.err == nil {
		f, n, rerr := ReadFrame(in[off:], c.cfg.MaxFrameSize)
		if rerr == ErrNeedMore {
			return off, nil
		}
		var se *StreamError
		switch e := rerr.(type) {
		case nil:
		case *StreamError:
			se = e
		case *ConnError:
			return off, c.fail(e)
		}
		off += n
		if perr := c.process(&f, se); perr != nil {
			c.fail(perr)
		}
	}
	return off, c.err
}

// process applies one frame; se is the stream error ReadFrame found in it, if any.
func (c *Conn) process(f *Frame, se *StreamError) error {
	if c.hdrStream != 0 && f.Type != FrameContinuation {
		return connErr(ErrCodeProtocol, "frame other than CONTINUATION inside a field block")
	}
	if !c.gotSettings && (f.Type != FrameSettings || f.Flags.Has(FlagAck)) {
		return connErr(ErrCodeProtocol, "first frame is not SETTINGS")
	}
	switch f.Type {
	case FrameData:
		return c.onData(f)
	case FrameHeaders:
		return c.onHeaders(f, se)
	case FrameContinuation:
		return c.onContinuation(f)
	case FramePriority:
		if err := c.flood(&c.pri, c.cfg.MaxPriorityFrames, GlitchPriority, "PRIORITY flood"); err != nil {
			return err
		}
		if se != nil {
			return c.resetStream(se)
		}
		return nil
	case FramePriorityUpdate:
		return c.onPriorityUpdate(f)
	case FrameRSTStream:
		return c.onRSTStream(f)
	case FrameSettings:
		return c.onSettings(f)
	case FramePushPromise:
		return connErr(ErrCodeProtocol, "PUSH_PROMISE from a client")
	case FramePing:
		return c.onPing(f)
	case FrameGoAway:
		if c.peerGoAway { // news once; later ones (one may lower the last stream) are counted
			if err := c.idleFrame("GOAWAY flood"); err != nil {
				return err
			}
		}
		c.peerGoAway = true
		c.h.OnGoAway(f.Code, f.Data)
		return nil
	case FrameWindowUpdate:
		return c.onWindowUpdate(f, se)
	}
	// Unknown frame types are ignored (RFC 9113 §4.1), and counted.
	return c.idleFrame("unknown frame flood")
}

// idleFrame counts a frame that makes the server do nothing — one of an unknown type,
// an acknowledgement of nothing the server sent, RST_STREAM on a stream that has
// ended — against MaxEmptyFrames, since such frames could otherwise be sent without
// end (CVE-2019-9518).
func (c *Conn) idleFrame(reason string) error {
	return c.flood(&c.empties, c.cfg.MaxEmptyFrames, GlitchEmptyFrames, reason)
}

// fail ends the connection with e (converted to a *ConnError when it is a stream error or
// anything else): it queues GOAWAY, reports every delivered stream reset, and makes every
// later Feed return the error. It returns the connection's error.
func (c *Conn) fail(e error) error {
	if c.err != nil {
		return c.err
	}
	ce, ok := e.(*ConnError)
	if !ok {
		if se, isStream := e.(*StreamError); isStream {
			return c.resetStream(se)
		}
		ce = connErr(ErrCodeInternal, e.Error())
	}
	c.err = ce
	c.grow()
	c.out = AppendGoAway(c.out, c.maxClientID, ce.Code, []byte(ce.Reason))
	c.countGoAway(ce.Code)
	for _, s := range c.streams {
		c.dropStream(s)
		if !s.pending {
			c.h.OnStreamReset(s, ce.Code, false)
		}
	}
	return c.err
}

// NumStreams returns how many streams are open or half-closed.
func (c *Conn) NumStreams() int { return len(c.streams) }

// Err returns the connection error that ended the connection, or nil.
func (c *Conn) Err() error { return c.err }

// Glitches returns how many times the client tripped a limit or broke a rule that costs a
// stream or the connection (HAProxy's "glitches"), over the connection's life. More than
// Config.MaxGlitches within one FloodWindow close the connection with ENHANCE_YOUR_CALM.
func (c *Conn) Glitches() int { return c.glitches }

// glitch counts one glitch of kind k and returns the connection error when the count
// of the current window passes the cap.
func (c *Conn) glitch(k GlitchKind) error {
	c.countGlitch(k)
	if c.glitchWin.hit(c.cfg.Now(), c.cfg.FloodWindow, c.cfg.MaxGlitches) {
		if c.ctr != nil {
			c.ctr.Glitches[GlitchLimit].Add(1)
		}
		return connErr(ErrCodeEnhanceYourCalm, "too many protocol glitches")
	}
	return nil
}

// flood counts one frame of a flood-prone kind and returns ENHANCE_YOUR_CALM when the
// per-window limit is passed (a glitch of kind k).
func (c *Conn) flood(fc *floodCounter, limit int, k GlitchKind, reason string) error {
	if fc.hit(c.cfg.Now(), c.cfg.FloodWindow, limit) {
		c.countGlitch(k)
		return connErr(ErrCodeEnhanceYourCalm, reason)
	}
	return nil
}

// Out returns the output waiting to be written to the connection. The slice is valid until
// the next call of any other method; the caller writes some prefix of it and reports that
// with Drained.
func (c *Conn) Out() []byte {
	if c.out == nil {
		return nil
	}
	return c.out[c.outOff:]
}

// Drained reports that the first n octets of Out were written. When the output empties, its
// buffer goes back to the pool; streams waiting for output room get OnWritable.
func (c *Conn) Drained(n int) {
	if c.out == nil || n <= 0 {
		return
	}
	c.outOff += n
	c.lastData = -1
	switch {
	case c.outOff >= len(c.out):
		pool.Put(c.out)
		c.out, c.outOff = nil, 0
	case c.outOff > cap(c.out)/2:
		k := copy(c.out, c.out[c.outOff:])
		c.out, c.outOff = c.out[:k], 0
	}
	if c.blocked > 0 && c.err == nil {
		c.wakeBlocked()
	}
}

// pending returns how many output octets wait to be written.
func (c *Conn) pending() int { return len(c.out) - c.outOff }

// grow makes sure the output has a buffer to append to.
func (c *Conn) grow() {
	if c.out == nil {
		c.out = pool.Get(4096)[:0]
	}
}

// control checks that another control frame fits in the output and readies the buffer.
func (c *Conn) control() error {
	if c.pending() > c.cfg.MaxOutputBuffered+c.cfg.MaxControlBuffered {
		c.countGlitch(GlitchControlBuffer)
		return connErr(ErrCodeEnhanceYourCalm, "peer does not read its control frames")
	}
	c.grow()
	return nil
}

// Done reports whether the connection has nothing left to do: it failed, or it is shutting
// down (by Shutdown or by the client's GOAWAY) and no stream remains. The caller closes the
// socket once Out is drained.
func (c *Conn) Done() bool {
	return c.err != nil || (c.shutdown == 2 || c.peerGoAway) && len(c.streams) == 0 && c.hdrStream == 0
}

// Shutdown starts the graceful two-phase shutdown of RFC 9113 §6.8: a GOAWAY with the
// last stream id 2^31-1 and a PING; when the PING comes back (or the caller's timer calls
// FinishShutdown) a second GOAWAY names the last stream actually accepted. Streams up to it
// complete; Done reports when they have.
func (c *Conn) Shutdown() {
	if c.err != nil || c.shutdown != 0 {
		return
	}
	c.shutdown = 1
	c.grow()
	c.out = AppendGoAway(c.out, MaxWindow, ErrCodeNo, nil)
	c.countGoAway(ErrCodeNo)
	c.out = AppendPing(c.out, false, shutdownPing)
}

// FinishShutdown sends the final GOAWAY of a shutdown in progress; after it the Conn ignores
// new streams. The caller calls it when Config.ShutdownTimeout has passed since Shutdown.
func (c *Conn) FinishShutdown() {
	if c.err != nil || c.shutdown != 1 {
		return
	}
	c.shutdown = 2
	c.goAwayLast = c.maxClientID
	c.grow()
	c.out = AppendGoAway(c.out, c.goAwayLast, ErrCodeNo, nil)
	c.countGoAway(ErrCodeNo)
}

// SettingsAcked reports whether the client has acknowledged the server's SETTINGS.
func (c *Conn) SettingsAcked() bool { return c.settingsAckd }

// SettingsTimeout is called by the caller's timer Config.SettingsTimeout after the
// connection started. If the client has not acknowledged the server's SETTINGS by then the
// connection fails with SETTINGS_TIMEOUT, which is returned.
func (c *Conn) SettingsTimeout() error {
	if c.settingsAckd || c.err != nil {
		return c.err
	}
	return c.fail(connErr(ErrCodeSettingsTimeout, "SETTINGS not acknowledged"))
}

// Config returns the connection's configuration with the defaults filled in.
func (c *Conn) Config() Config { return *c.cfg }
