package http2

import "time"

// Config tunes one server Conn. A zero field means "use the default" named beside it; the
// defaults are also listed in docs/http2.md. Every limit that trips adds one to the
// connection's glitch count (Conn.Glitches).
type Config struct {
	// MaxConcurrentStreams is advertised in SETTINGS; a HEADERS frame opening a stream
	// beyond it is refused with RST_STREAM REFUSED_STREAM. Default 128.
	MaxConcurrentStreams uint32
	// InitialStreamWindow is the receive window advertised for every stream
	// (SETTINGS_INITIAL_WINDOW_SIZE). Default 256 KiB.
	InitialStreamWindow uint32
	// ConnWindow is the connection receive window, raised from 65,535 by a WINDOW_UPDATE
	// right after the server preface. Default 1 MiB.
	ConnWindow uint32
	// MaxFrameSize is the SETTINGS_MAX_FRAME_SIZE advertised, the largest frame payload
	// accepted. Default 16,384 (the protocol minimum).
	MaxFrameSize uint32
	// HeaderTableSize is the HPACK dynamic table size of the decoder. Default 4,096.
	HeaderTableSize uint32
	// MaxRequestLine bounds :method and :path as HTTP/1.1 bounds the request line they
	// make (http1.Limits.MaxRequestLine): their lengths plus 10 octets (two spaces and
	// "HTTP/1.1"). Longer → 414 response. Default 8 KiB, the HTTP/1.1 default.
	MaxRequestLine int
	// MaxHeaderBytes bounds the regular fields of a decoded field section as HTTP/1.1
	// counts a header section (http1.Limits.MaxHeaderBytes): each field as its name plus
	// its value plus 4 octets (": " and CRLF), a cookie field after the first as its
	// value plus 2 ("; ", since HTTP/1.1 carries the split cookie as one line).
	// Pseudo-header fields are not counted. Larger → 431 response. Default 64 KiB, the
	// HTTP/1.1 default, so that a request gets the same answer over both protocols.
	MaxHeaderBytes int
	// MaxHeaderFields bounds the number of regular fields of a decoded section, cookie
	// fields counting as one (http1.Limits.MaxHeaderFields). More → 431 response.
	// Default 100, the HTTP/1.1 default.
	MaxHeaderFields int
	// MaxHeaderListSize bounds a decoded field section, counting each field as its name
	// plus its value plus 32 octets (RFC 9113 §6.5.2), and is advertised as
	// SETTINGS_MAX_HEADER_LIST_SIZE. Larger → 431 response. Default: what the largest
	// section of unsplit fields within MaxHeaderBytes and MaxHeaderFields measures this
	// way, with MaxRequestLine for the pseudo-header fields (HeaderListSizeFor):
	// 76,688 with the defaults, so that a client that honours the setting, as Go's
	// does, still sends the requests HTTP/1.1 takes.
	MaxHeaderListSize uint32
	// MaxHeaderStringLength bounds one decoded name or value; longer →
	// COMPRESSION_ERROR for the connection, since the HPACK decoder cannot go on.
	// Default MaxHeaderListSize, at least 64 KiB: a field any section could hold is
	// decoded, and a section it makes too large is answered 431 with HPACK in sync,
	// so one long cookie costs its request, not the connection, and HTTP/2 takes
	// the fields HTTP/1.1 takes within its header limit.
	MaxHeaderStringLength int
	// MaxHeaderBlockBytes bounds the encoded field block of one HEADERS plus its
	// CONTINUATION frames; more → ENHANCE_YOUR_CALM. Default 128 KiB.
	MaxHeaderBlockBytes int
	// MaxContinuationFrames bounds the CONTINUATION frames of one field block; more →
	// ENHANCE_YOUR_CALM. Default 32.
	MaxContinuationFrames int

	// FloodWindow is the period over which the flood counters below are counted; each
	// counter starts again at zero when the window ends. Default 10 s.
	FloodWindow time.Duration
	// MaxRapidResets is how many streams the client may reset before their response was
	// complete, per window; more → GOAWAY ENHANCE_YOUR_CALM (CVE-2023-44487). Default 200.
	MaxRapidResets int
	// MaxPings is how many PING frames (not acknowledgements) are accepted per window
	// (CVE-2019-9512). Default 100.
	MaxPings int
	// MaxSettings is how many SETTINGS frames (not acknowledgements) are accepted per
	// window (CVE-2019-9515). Default 100.
	MaxSettings int
	// MaxSmallWindowUpdates is how many WINDOW_UPDATE frames with an increment below
	// 1,024 octets are accepted per window (CVE-2019-9511). Default 2,000.
	MaxSmallWindowUpdates int
	// MaxEmptyFrames is how many frames that carry nothing (empty DATA without END_STREAM,
	// empty HEADERS or CONTINUATION fragments without END_HEADERS) are accepted per window
	// (CVE-2019-9518). Default 100.
	MaxEmptyFrames int
	// MaxPriorityFrames is how many PRIORITY and PRIORITY_UPDATE frames are accepted per
	// window (CVE-2019-9513). Default 1,000.
	MaxPriorityFrames int
	// MaxGlitches is how many glitches are accepted per window; one more closes the
	// connection with GOAWAY ENHANCE_YOUR_CALM. Counted per window, not over the
	// connection's life, so that a long-lived connection that multiplexes many
	// clients' requests (a load balancer's) is not cut off for the occasional 431 or
	// malformed request of each. Default 1,000.
	MaxGlitches int

	// MaxOutputBuffered bounds the unsent output that WriteData may build up; beyond it
	// WriteData sends nothing more until the caller drains Out (OnWritable follows).
	// Default 256 KiB.
	MaxOutputBuffered int
	// MaxControlBuffered bounds the control frames (SETTINGS and PING acknowledgements,
	// RST_STREAM, WINDOW_UPDATE) that may wait in the output on top of MaxOutputBuffered;
	// a peer that sends frames needing an answer and never reads the answers gets
	// ENHANCE_YOUR_CALM. Default 64 KiB.
	MaxControlBuffered int
	// SettingsTimeout is how long the caller waits for the client's SETTINGS ACK before it
	// calls Conn.SettingsTimeout. The Conn keeps no timers; the value is only carried here.
	// Default 10 s.
	SettingsTimeout time.Duration
	// ShutdownTimeout is how long the caller waits after Conn.Shutdown before it calls
	// Conn.FinishShutdown if the PING round trip has not completed. Default 1 s.
	ShutdownTimeout time.Duration
	// Now returns the current time for the flood windows. Default time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultMaxConcurrentStreams  = 128
	DefaultInitialStreamWindow   = 256 << 10
	DefaultConnWindow            = 1 << 20
	DefaultHeaderTableSize       = 4096
	DefaultMaxRequestLine        = 8 << 10
	DefaultMaxHeaderBytes        = 64 << 10
	DefaultMaxHeaderFields       = 100
	DefaultMaxHeaderStringLength = 64 << 10
	DefaultMaxHeaderBlockBytes   = 128 << 10
	DefaultMaxContinuationFrames = 32
	DefaultFloodWindow           = 10 * time.Second
	DefaultMaxRapidResets        = 200
	DefaultMaxPings              = 100
	DefaultMaxSettings           = 100
	DefaultMaxSmallWindowUpdates = 2000
	DefaultMaxEmptyFrames        = 100
	DefaultMaxPriorityFrames     = 1000
	DefaultMaxGlitches           = 1000
	DefaultMaxOutputBuffered     = 256 << 10
	DefaultMaxControlBuffered    = 64 << 10
	DefaultSettingsTimeout       = 10 * time.Second
	DefaultShutdownTimeout       = time.Second
)

func orDefault[T int | uint32 | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// HeaderListSizeFor returns the MaxHeaderListSize that holds every section of
// unsplit fields HTTP/1.1 takes within headerBytes and headerFields, with a request
// line of requestLine octets as pseudo-header fields: each field costs 28 octets
// more in RFC 9113 §6.5.2's measure than as a field line, and the five
// pseudo-header fields at most the request line plus 32 each.
func HeaderListSizeFor(headerBytes, headerFields, requestLine int) uint32 {
	return uint32(min(headerBytes+28*headerFields+requestLine+5*32, MaxWindow))
}

// Shared returns the configuration with its defaults filled in, for NewSharedConn:
// connections made from one *Config share it instead of each holding a copy.
func (c Config) Shared() *Config {
	d := c.withDefaults()
	return &d
}

// withDefaults returns c with every zero field replaced by its default and out-of-range
// values clamped to what the protocol allows.
func (c Config) withDefaults() Config {
	c.MaxConcurrentStreams = orDefault(c.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	c.InitialStreamWindow = min(orDefault(c.InitialStreamWindow, DefaultInitialStreamWindow), MaxWindow)
	c.ConnWindow = min(max(orDefault(c.ConnWindow, DefaultConnWindow), InitialWindow), MaxWindow)
	c.MaxFrameSize = min(max(c.MaxFrameSize, MinMaxFrameSize), MaxMaxFrameSize)
	c.HeaderTableSize = orDefault(c.HeaderTableSize, DefaultHeaderTableSize)
	c.MaxRequestLine = min(orDefault(c.MaxRequestLine, DefaultMaxRequestLine), 1<<30)
	c.MaxHeaderBytes = min(orDefault(c.MaxHeaderBytes, DefaultMaxHeaderBytes), 1<<30)
	c.MaxHeaderFields = min(orDefault(c.MaxHeaderFields, DefaultMaxHeaderFields), 1<<20)
	c.MaxHeaderListSize = orDefault(c.MaxHeaderListSize, HeaderListSizeFor(c.MaxHeaderBytes, c.MaxHeaderFields, c.MaxRequestLine))
	c.MaxHeaderStringLength = orDefault(c.MaxHeaderStringLength, max(int(c.MaxHeaderListSize), DefaultMaxHeaderStringLength))
	c.MaxHeaderBlockBytes = orDefault(c.MaxHeaderBlockBytes, DefaultMaxHeaderBlockBytes)
	c.MaxContinuationFrames = orDefault(c.MaxContinuationFrames, DefaultMaxContinuationFrames)
	c.FloodWindow = orDefault(c.FloodWindow, DefaultFloodWindow)
	c.MaxRapidResets = orDefault(c.MaxRapidResets, DefaultMaxRapidResets)
	c.MaxPings = orDefault(c.MaxPings, DefaultMaxPings)
	c.MaxSettings = orDefault(c.MaxSettings, DefaultMaxSettings)
	c.MaxSmallWindowUpdates = orDefault(c.MaxSmallWindowUpdates, DefaultMaxSmallWindowUpdates)
	c.MaxEmptyFrames = orDefault(c.MaxEmptyFrames, DefaultMaxEmptyFrames)
	c.MaxPriorityFrames = orDefault(c.MaxPriorityFrames, DefaultMaxPriorityFrames)
	c.MaxGlitches = orDefault(c.MaxGlitches, DefaultMaxGlitches)
	c.MaxOutputBuffered = orDefault(c.MaxOutputBuffered, DefaultMaxOutputBuffered)
	c.MaxControlBuffered = orDefault(c.MaxControlBuffered, DefaultMaxControlBuffered)
	c.SettingsTimeout = orDefault(c.SettingsTimeout, DefaultSettingsTimeout)
	c.ShutdownTimeout = orDefault(c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// floodCounter counts events of one kind within the current flood window.
type floodCounter struct {
	start int64 // Unix nanoseconds of the window's first event
	n     int32
}

// hit counts one event at now and reports whether the count exceeds limit within the
// window that began at the counter's start.
func (f *floodCounter) hit(now time.Time, window time.Duration, limit int) bool {
	t := now.UnixNano()
	if f.n == 0 || time.Duration(t-f.start) >= window {
		f.start, f.n = t, 0
	}
	if f.n <= int32(min(limit, 1<<30)) {
		f.n++
	}
	return int(f.n) > limit
}
