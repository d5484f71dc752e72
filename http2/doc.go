// Package http2 is the server side of HTTP/2 (RFC 9113) without I/O: no sockets, no
// goroutines, no timers. The caller moves bytes and keeps time; this package decides what
// they mean and what to answer.
//
// # Frames
//
// ReadFrame decodes one frame from the start of a byte slice and reports how many bytes it
// consumed, or ErrNeedMore when the slice holds less than a whole frame. It checks
// everything RFC 9113 requires of a frame on its own (lengths, padding, stream ids that must
// or must not be zero, SETTINGS values). The Append functions (AppendData, AppendHeaders
// with CONTINUATION splitting, AppendSettings, AppendPing, AppendGoAway, AppendRSTStream,
// AppendWindowUpdate, AppendPriority, AppendFrameHeader) write frames onto a byte slice.
//
// # Connections
//
// A Conn is one server connection. The caller:
//
//   - feeds it what the socket delivers with Feed, keeping the unconsumed tail (an
//     incomplete frame) in front of what it reads next;
//   - writes Out to the socket and reports what was written with Drained;
//   - answers the Handler's events (OnRequest, OnData, OnTrailers, OnStreamReset,
//     OnWritable, OnGoAway) with WriteHeaders, WriteData, WriteTrailers and ResetStream;
//   - returns request body bytes to flow control with Consumed once the application has
//     used them: receive windows follow the application, not the socket;
//   - runs the timers: SettingsTimeout after Config.SettingsTimeout, FinishShutdown after
//     Config.ShutdownTimeout following Shutdown, and a write timeout of its own for peers
//     that keep a window closed or stop reading;
//   - closes the socket once Done reports true and Out is drained, or once Feed or
//     SettingsTimeout returned an error and Out is drained.
//
// WriteData sends only what the stream window, the connection window and the output cap
// allow, and reports the rest; OnWritable tells when to resume. Streams that wait are woken
// in the order of their RFC 9218 urgency.
//
// # Errors
//
// Errors are typed by blast radius. A *StreamError costs one stream: the Conn sends
// RST_STREAM, tells the Handler (OnStreamReset), and goes on. A *ConnError costs the
// connection: the Conn queues GOAWAY with its code, reports every open stream reset, and
// returns the error from Feed now and forever. ErrStreamClosed from a write method means
// the stream can no longer be written (reset, ended, or unknown).
//
// # Limits
//
// Config holds every limit with a documented default (zero means default): concurrent
// streams, header list and string sizes, CONTINUATION count and block size, the per-window
// counts of PING, SETTINGS, small WINDOW_UPDATE, empty, PRIORITY frames and of early client
// resets, the output and control-frame caps. Each limit that trips counts a glitch
// (Conn.Glitches); too many glitches end the connection with ENHANCE_YOUR_CALM.
//
// # Memory
//
// A Conn with no stream and a drained output holds no buffer but its two HPACK tables: the
// output buffer and the HPACK encoding scratch return to the pool, the stream table is
// dropped when empty, and decoded fields belong to the Stream that carries them.
//
// A Conn and its Streams belong to one goroutine; nothing here is safe for concurrent use.
package http2
