package http2

import "sync/atomic"

// GlitchKind says which limit or rule a glitch (Conn.Glitches) came from, for Counters.
type GlitchKind uint8

// The kinds of glitch. The flood kinds count a connection cut off when the flood's
// per-window limit passed; the others count each occurrence.
const (
	GlitchStreamError   GlitchKind = iota // a stream reset for breaking a rule (malformed request, DATA after END_STREAM, window overflow ...)
	GlitchRefusedStream                   // a stream beyond MaxConcurrentStreams, refused
	GlitchHeaderList                      // a field section beyond the header limits, answered 431 (414 for the request line)
	GlitchHeaderBlock                     // CONTINUATION flood: MaxHeaderBlockBytes or MaxContinuationFrames passed
	GlitchRapidReset                      // MaxRapidResets passed (CVE-2023-44487)
	GlitchPing                            // MaxPings passed
	GlitchSettings                        // MaxSettings passed
	GlitchWindowUpdate                    // MaxSmallWindowUpdates passed
	GlitchEmptyFrames                     // MaxEmptyFrames passed
	GlitchPriority                        // MaxPriorityFrames passed
	GlitchControlBuffer                   // MaxControlBuffered passed: the peer does not read
	GlitchLimit                           // MaxGlitches passed
	NumGlitchKinds
)

var glitchNames = [NumGlitchKinds]string{
	"stream_error", "refused_stream", "header_list", "header_block", "rapid_reset", "ping",
	"settings", "window_update", "empty_frames", "priority", "control_buffer", "glitch_limit",
}

// String returns the kind's metric label, such as "rapid_reset".
func (k GlitchKind) String() string {
	if k < NumGlitchKinds {
		return glitchNames[k]
	}
	return "unknown"
}

// NumErrCodes is the number of error codes RFC 9113 defines (0x0 to 0xd).
const NumErrCodes = len(errCodeNames)

// Counters are cumulative event counts of the Conns that share them (Conn.SetCounters),
// for metrics. Each field is written only by the goroutine that owns those Conns (a
// server's event loop: one Counters per loop) and may be read by any goroutine at any
// time; writers use atomic adds so that readers see whole values.
type Counters struct {
	// StreamsOpened counts streams accepted (HEADERS that opened a stream the
	// application was, or would have been, given; refused streams are not counted).
	StreamsOpened atomic.Uint64
	// ResetsReceived counts RST_STREAM frames from clients for open streams.
	ResetsReceived atomic.Uint64
	// ResetsSent counts RST_STREAM frames sent: stream errors, refused streams, 431
	// answers to a client still sending, and the application's ResetStream.
	ResetsSent atomic.Uint64
	// GoAwaysSent counts GOAWAY frames sent, by error code; the last element counts
	// codes outside RFC 9113's. A graceful shutdown sends two NO_ERROR.
	GoAwaysSent [NumErrCodes + 1]atomic.Uint64
	// Glitches counts glitches by kind.
	Glitches [NumGlitchKinds]atomic.Uint64
}

// SetCounters makes the Conn add its events to ctr (nil: count nothing). The caller
// owns ctr on the Conn's goroutine, as it owns the Conn.
func (c *Conn) SetCounters(ctr *Counters) { c.ctr = ctr }

// countGoAway counts a GOAWAY sent with code.
func (c *Conn) countGoAway(code ErrCode) {
	if c.ctr != nil {
		c.ctr.GoAwaysSent[min(int(code), NumErrCodes)].Add(1)
	}
}

// countReset counts a RST_STREAM sent.
func (c *Conn) countReset() {
	if c.ctr != nil {
		c.ctr.ResetsSent.Add(1)
	}
}

// countGlitch counts one glitch of kind k, in Glitches and in the Counters.
func (c *Conn) countGlitch(k GlitchKind) {
	c.glitches++
	if c.ctr != nil {
		c.ctr.Glitches[k].Add(1)
	}
}
