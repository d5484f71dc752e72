// Package static is gale's file server: the handler behind a route's `static` action.
//
// A Handler serves the files beneath one root directory. It is built with New from
// Options, runs inline on the event loops through ServeGale, and is shared by all of
// them. Everything that decides a response is a plain function with its own tests:
// splitPath (normalized request path → relative path), the resolver (relative path → open file
// under the symlink policy), evalPreconditions and ifRangeMatches (RFC 9110 §13),
// ParseRange (RFC 9110 §14), negotiateEncoding (Accept-Encoding), wantsJSON (Accept),
// and the open-file cache. serve ties them together over server.Exchange, the
// protocol-neutral request and response interface that *server.Ctx implements for
// HTTP/1.1; ServeExchange takes any implementation (an HTTP/2 stream later, the
// in-memory servertest.Exchange in the tests, so the whole request flow is tested
// without a socket).
//
// # Paths and safety
//
// The handler serves the request's NormPath, the normal form http1.NormalizePath gives
// and routing matched (docs/routing.md): decoded exactly once, dot segments resolved,
// repeated slashes merged; invalid percent-encoding, NUL, control bytes, backslash,
// encoded '/' and ".." above the root were refused with 400 by the parser. A path
// above 4096 bytes is refused with 414. A mount Prefix without a trailing slash ends
// inside a segment, so the rest of the path may start with what would alone be a dot
// segment ("/files../x" under "/files"); that is answered 404. Double encoding is not undone ("%252e" is a
// file literally named "%2e"). The result is opened relative to the root:
//
//   - On Linux, with openat2(2) anchored at an O_PATH descriptor of the root and
//     RESOLVE_BENEATH, so the kernel refuses any resolution that leaves the root, and
//     RESOLVE_NO_SYMLINKS for FollowSymlinks "never". For "inside_root" an absolute
//     link (which RESOLVE_BENEATH always refuses) is resolved by name and accepted
//     when its target lies beneath the root; the symlink-free result is then opened
//     again with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so a concurrent swap fails
//     instead of escaping. Kernels without openat2 fall back to the portable code.
//   - Elsewhere, with filepath.EvalSymlinks and Lstat checks before and after the
//     open, comparing file identity. A link swapped in and out between the checks is
//     not detected there; do not let untrusted users write inside the root on such
//     systems.
//
// Files are opened with O_NONBLOCK and anything but a regular file or a directory
// (a FIFO, a device, a socket) is answered 404, so no open can block the loop; an
// open that fails with ENXIO or ENODEV (a socket file, a device without a driver)
// is such a file too. Failures are 404 (missing, refused by policy), 403 (EACCES),
// or 500.
//
// Dotfiles (a segment starting with '.', except ".well-known" for RFC 8615): "deny"
// (the default) answers 403, "ignore" treats them as missing (404 or the fallback),
// "allow" serves them. Listings hide them unless allowed.
//
// # Open-file cache
//
// One cache per Handler, shared by every loop: keys hash to 16 shards (one when Max
// is under 256), each an LRU under its own mutex, held only for map and list updates,
// never across a system call. Per-loop caches were rejected because they would hold
// up to one descriptor per file per loop and revalidate each file once per loop.
// An entry holds the open file (or, for files up to 16 KiB within a 64 MiB budget,
// the whole content, with the descriptor closed), size, mtime, entity-tag,
// content type and pre-rendered header lines that go out through Header.AppendRaw.
// Entries holding a descriptor are at most a quarter of RLIMIT_NOFILE per Handler
// (the least recently used one of a shard goes first), whatever Max says, so the
// cache never takes the descriptors connections need; an open that fails with EMFILE
// or ENFILE anyway makes the cache close the least recently used half of its
// descriptors before the one retry.
// An entry older than Revalidate is checked by opening the file again (through the
// same safe resolver) and comparing identity, size, mtime and the set of
// precompressed siblings, so an edited or replaced file is served fresh within
// Revalidate. An entry served from its descriptor (files above 16 KiB) is also
// checked with one fstat on every hit: sendfile reads the file as it is now, so a
// file truncated, extended or rewritten in place is reloaded at once instead of
// going out with the old Content-Length and entity-tag around new bytes, or cut
// short, and a file with no link left (deleted, or replaced by a rename) is looked up
// by name again at once. An in-memory entry is a snapshot taken at load, served whole
// as it was until Revalidate. Entries are reference-counted: the cache holds one
// reference, each request one, and each queued sendfile one, released by the server
// when the bytes have gone or the connection died. An evicted or replaced entry stays open until its
// last send finishes. Failed lookups are not cached: a flood of random missing paths
// would otherwise evict the hot entries, and a missing-file openat2 costs about a
// microsecond. Directories are not cached either.
//
// # Responses
//
// Content-Type comes from a built-in table for the web's common types, then
// mime.TypeByExtension, with "; charset=utf-8" added to text types, else
// application/octet-stream. The entity-tag is strong, "<hex mtime ns>-<hex size>",
// plus "-br", "-zstd" or "-gzip" for a precompressed variant, so every
// representation has its own validator and If-Range works on each.
//
// Preconditions follow RFC 9110 §13.2.2: If-Match (strong) then If-Unmodified-Since
// fail with 412; If-None-Match (weak) then If-Modified-Since give 304, and
// If-None-Match takes precedence over If-Modified-Since. A 304 carries ETag,
// Last-Modified, Cache-Control and Vary. List fields (If-Match, If-None-Match,
// Accept-Encoding, Accept) sent on several field lines are read as the lines joined
// with commas (RFC 9110 §5.3). A field that holds one value (Range, If-Range,
// If-Modified-Since, If-Unmodified-Since) sent on several lines that disagree is
// invalid: it is ignored, and such an If-Range never matches, so the whole
// representation is sent rather than a part chosen by a line that a proxy in front
// may not have read. Invalid dates are ignored, and so is an
// If-Modified-Since later than the server's clock (gale never sent it). A file whose
// mtime lies in the future reports the response's Date as its Last-Modified (RFC 9110
// §8.8.2.1) and is compared as that time, so dates never make it 304 or match
// If-Range until the clock has passed its mtime; its entity-tag still works.
// A directory listing has no entity-tag and no modification date: only "*"
// matches its If-Match (any list of tags gives 412) and its If-None-Match (304), and
// the dates are ignored.
//
// Ranges apply to GET and to HEAD, which gets the head GET would (RFC 9110 §9.3.2:
// 206, multipart or 416, without the body, as nginx and Go's net/http answer), and to
// the selected representation, compressed or not. If-Range must match the
// entity-tag strongly or equal Last-Modified exactly, else the whole file is sent. A
// malformed Range or another unit is ignored (200), and so is any Range on an empty
// representation (200 with Content-Length 0, as nginx and Go's net/http answer). One satisfiable range gives a
// single 206; several give multipart/byteranges with a per-response boundary, part
// headers written with Write and the bytes with SendFile, except for a precompressed
// variant, whose Content-Encoding would stand over a multipart body not in that
// coding (curl --compressed fails on it): several ranges of it get the whole variant
// with 200. Unsatisfiable ranges are
// dropped; if none remains, or more than MaxRanges (16) are asked for, or more than
// two ranges take part in overlaps, the answer is 416 with "Content-Range: bytes
// */size". Exactly two overlapping ranges are coalesced, so a response never carries
// more bytes than the file.
//
// Precompressed siblings (file.br, file.zst, file.gz) are probed when an entry is
// loaded and chosen by Accept-Encoding weights (q=0 excludes; ties prefer br, then
// zstd, then gzip; identity wins when weighted higher). Responses for a file with
// siblings always carry "Vary: Accept-Encoding", even when identity is served. A
// sibling requested by its own name is served as itself, without Content-Encoding.
//
// Small files go out with Write, so headers and body leave in one writev; larger
// ones with SendFile. If a file shrinks while it is being sent, the server's
// sendfile sees a short read and closes the connection, since the promised
// Content-Length can no longer be met; the next request gets the new size (the
// fstat on the cache hit sees it).
//
// A directory requested without its trailing slash is redirected with 301 to the
// slash form, keeping the query (bytes outside ASCII, controls, the ASCII bytes a
// URI may not hold such as '"', '<' and '|', and a '%' that starts no escape
// percent-encoded, so the Location is a valid URI); the Location is built from the
// cleaned path under the mount Prefix, never echoed from the request, so it cannot
// become a protocol-relative open redirect. With the slash, the Index files are tried in
// order, then a listing if Browse is on (HTML, titled with the decoded path as
// nginx's autoindex is, or JSON, whose path is the percent-encoded link form, when
// Accept prefers application/json; directories first, names escaped, at most 10000
// entries), then the Fallback file, else 404. Fallback also answers every missing file with 200,
// like try_files $uri /index.html; it does not answer 400s or denied dotfiles.
//
// Only GET and HEAD are served; other methods get 405 with "Allow: GET, HEAD".
//
// # Blocking
//
// Handlers run on the event loop. A cache hit costs no system call for an
// in-memory file and one fstat for a file sent from its descriptor
// (BenchmarkServeLargeHit: 160 ns without it, 720 ns with it on a 2-CPU VM, against
// the several microseconds the sendfile of more than 16 KiB costs). A miss or a
// revalidation costs an openat2, an fstat, sibling probes and, for small files, one
// read of up to 16 KiB: local-disk work of the kind nginx also does on its workers
// without thread pools. Directory listings read the directory on the loop, bounded
// by 10000 entries.
package static
