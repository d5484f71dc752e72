// Package l4 is gale's layer-4 (TCP) proxy: it relays connections accepted on
// its listeners to upstream servers, both directions on the client connection's
// event loop, without looking inside the stream beyond an optional PROXY
// protocol header (accept_proxy) and the TLS ClientHello's server name (sni).
//
// A relay moves bytes by copying them through user space until a direction has
// read SpliceAfter bytes in a run of large reads (a bulk transfer), then (on
// Linux) by splice(2) through a pipe taken from its loop's pool: socket → pipe →
// socket, without copying. A FIN in one
// direction is passed on as a half-close (the other direction stays open until
// it ends too); a reset or error on one side resets the other. A slow receiver
// stops reads on the fast sender: in copy mode at the engine's high-water mark,
// in splice mode when the pipe is full. See docs/l4.md.
package l4
