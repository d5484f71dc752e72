// Package http1 parses HTTP/1.1 requests (RFC 9112) and writes response framing, without
// doing any I/O: callers hand it bytes and it reports how many it consumed, what it found,
// or that it needs more.
//
// # Parsing
//
// Parser.ParseHead parses one request head into a Request whose byte slices are views
// into the input. An incomplete head yields ErrNeedMore; the caller calls again with the
// same bytes followed by new ones (they may have moved to another buffer). The parser
// remembers how far it has validated, so a client sending one byte at a time costs time
// linear in the head's length. The result never depends on how the input was split:
// whole, split anywhere, or one byte at a time give the same requests and errors.
// BodyReader then decodes the body framed by Content-Length or chunked, returning views
// of the data and copies of any trailers. Pipelined requests follow one another in the
// input; each part consumes only its own bytes.
//
// # Limits
//
// Limits bound what one request may use; zero fields take these defaults:
//
//   - MaxRequestLine, 8192 bytes without CRLF → 414.
//   - MaxHeaderBytes, 65536 bytes of field lines (each counted with its CRLF) → 431.
//   - MaxHeaderFields, 100 field lines → 431.
//   - MaxBodyBytes, unlimited by default → 413 (Content-Length at once, chunked as it
//     arrives).
//
// Limits are enforced on incomplete input too: a request line or header section that
// passes its limit without ending is refused as soon as it does. Chunked framing has fixed
// bounds: a chunk-size line (with extensions) of MaxChunkLine bytes → 400, and a trailer
// section of MaxTrailerBytes or MaxTrailerFields lines → 431. At most 8 empty lines (CRLF)
// before a request line are skipped, as RFC 9112 §2.2 allows; more → 400.
//
// # Errors
//
// A protocol error is an *Error carrying the status to answer with. It is a
// connection-level error: the caller sends that status and closes, because the start of
// the next request can no longer be trusted. Syntax errors are reported for the first bad
// line; then, for a syntactically valid head, field semantics are checked in a fixed order
// that does not depend on field order: Host, Content-Length, Content-Length with
// Transfer-Encoding, Transfer-Encoding, Expect, body size.
//
// # Decisions
//
// Where RFC 9112 lets a recipient choose, this package chooses the strict side, to leave
// no room for request smuggling between gale and any other HTTP agent:
//
//   - Lines end in CRLF. A bare LF line ending is refused (400), although RFC 9112 §2.2
//     allows accepting it; a bare CR anywhere in a head is refused (400).
//   - Obsolete line folding (a field line starting with SP or HTAB, including the first
//     one) is refused (400), and so is whitespace between a field name and its colon.
//   - Method and field names must be tokens. Field values may hold VCHAR, obs-text
//     (0x80-0xFF), SP and HTAB; NUL, other controls and DEL → 400.
//   - The request line is exactly method SP target SP version. The target may hold
//     visible ASCII except '#', plus obs-text (raw UTF-8 that some clients send); it is not
//     decoded. origin-form is usual; absolute-form is accepted for http and https only,
//     without userinfo, and its authority becomes Request.Host; authority-form (host:port)
//     only with CONNECT; asterisk-form only with OPTIONS. Anything else → 400.
//   - HTTP/1.0 and HTTP/1.1 are served; HTTP/1.2 to 1.9 are treated as 1.1 (RFC 9110
//     §6.2); other major versions → 505; a malformed version → 400.
//   - Host: an HTTP/1.1 request needs exactly one, any request at most one, and its value
//     must be uri-host [":" port] (empty allowed) → otherwise 400 (RFC 9112 §3.2).
//   - Content-Length must be 1*DIGIT within int64. Several field lines with the same
//     value are merged; differing values → 400. The list form ("5, 5") is refused (400)
//     even when the elements are equal.
//   - Transfer-Encoding must end in chunked, applied once: no chunked, or anything after
//     it (a second chunked included) → 400. Other codings before chunked ("gzip, chunked")
//     are not decoded → 501 (RFC 9112 §6.1). Transfer-Encoding together with
//     Content-Length → 400, and in an HTTP/1.0 request → 400.
//   - Chunk sizes are 1*HEXDIG without sign, prefix or surrounding whitespace, within
//     int64; chunk extensions must match the RFC 9112 §7.1.1 grammar and are ignored;
//     chunk data must be followed by CRLF. Violations → 400. Trailers are validated like
//     header fields and returned as received, except that a field RFC 9110 §6.5.1 keeps
//     out of trailers (framing, routing, request modifiers, authentication, content
//     format; ForbiddenTrailer) → 400.
//   - Expect: 100-continue sets Request.Expect100 (ignored in HTTP/1.0, RFC 9110
//     §10.1.1); any other expectation → 417.
//   - Connection: HTTP/1.1 keeps the connection alive unless "close" is present;
//     HTTP/1.0 only with "keep-alive" and no "close". Request.Upgrade is set for HTTP/1.1
//     when Connection has "upgrade" and an Upgrade field is present.
//
// # Writing
//
// AppendStatusLine, AppendHeader, AppendChunk, AppendLastChunk, AppendDate and their
// relatives append response framing to a caller's buffer without allocating. Field names
// and values are sanitised so that a header cannot inject another. AppendDate renders the
// Date line at most once per second into a shared cache behind an atomic pointer; it uses
// no goroutine.
package http1
