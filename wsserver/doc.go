// Package wsserver serves WebSocket connections (RFC 6455, RFC 7692) on gale's event
// loops. It binds the sans-IO codec of package websocket to engine connections: a
// Server answers the opening handshake of an HTTP/1.1 request (Upgrade, or ServeGale
// as a route handler), re-parents the connection and then reads frames, assembles or
// streams messages, answers pings, sends keep-alive pings, enforces the idle timeout,
// runs the close handshake with a timeout, and applies the output high-water policy.
//
// # Handlers
//
// A Handler runs inline on the connection's loop and must not block. OnOpen is called
// once the 101 response is queued, OnMessage with every whole message (a view valid
// only during the call), and OnClose exactly once. A Handler that also implements
// PartHandler receives the uncompressed messages that do not arrive as one frame in one
// read as parts instead (OnPart), so that large messages are never held whole.
// Compressed messages are always delivered whole: they are inflated once complete.
//
// # Idle cost
//
// An idle connection holds its engine Conn and one Conn of this package (112
// bytes): no read or write buffer, no timer beyond the engine connection's own, and no
// compression state unless the peer negotiated context takeover. Message buffers come
// from the process's size-classed pool and go back once the message is delivered;
// compressors and decompressors come from the loop's websocket.DeflatePool for one
// message.
//
// # Output policy
//
// Sends are queued on the engine connection. A send made while more than
// Options.HighWater bytes are already queued is refused with ErrOverflow, and the
// connection is closed with Options.OverflowCode (1008 policy violation by default, or
// 1013 try again later) and counted in Stats.Overflows: a peer that does not read its
// messages is dropped instead of growing the queue. The close frame waits behind the
// queued output; the close timeout then resets the connection if the peer still does
// not read.
//
// # Ownership
//
// A Conn is owned by its connection's loop: every method must be called there (from a
// Handler callback or a closure passed to Conn.Loop().Post). Server is safe for
// concurrent use; its per-loop state belongs to each loop.
package wsserver
