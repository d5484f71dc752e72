package http1

import (
	"strings"
	"testing"
)

var (
	chunkedReq = Request{Chunked: true, ContentLength: -1}
	noBodyReq  = Request{ContentLength: -1}
)

func lengthReq(n int64) *Request { return &Request{ContentLength: n} }

type bodyCase struct {
	name     string
	req      *Request
	max      int64
	in       string
	data     string
	trailers string // %q of Trailers()
	leftover int
	err      *Error // nil when the body must end
}

var bodyCases = []bodyCase{
	{name: "no body", req: &noBodyReq, in: "GET / HTTP/1.1\r\n", leftover: 16, trailers: "[]"},
	{name: "length", req: lengthReq(5), in: "hello", data: "hello", trailers: "[]"},
	{name: "length with next request", req: lengthReq(5), in: "helloGET /", data: "hello", leftover: 5, trailers: "[]"},
	{name: "length zero", req: lengthReq(0), in: "x", leftover: 1, trailers: "[]"},
	{name: "length over max", req: lengthReq(11), max: 10, in: "01234567890", err: errTooLarge},
	{name: "length at max", req: lengthReq(10), max: 10, in: "0123456789", data: "0123456789", trailers: "[]"},
	{name: "chunked simple", req: &chunkedReq, in: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
		data: "hello world", trailers: "[]"},
	{name: "chunked upper hex and zeros", req: &chunkedReq, in: "000A\r\n0123456789\r\n00\r\n\r\nNEXT",
		data: "0123456789", trailers: "[]", leftover: 4},
	{name: "chunked extensions", req: &chunkedReq,
		in:   "3;a\r\nabc\r\n2 ; b = c ;d=\"q \\\"x\\\\\" ;e\r\nde\r\n1;\tf\t=\tg\r\nf\r\n0;last=1\r\n\r\n",
		data: "abcdef", trailers: "[]"},
	{name: "chunked trailers", req: &chunkedReq, in: "3\r\nabc\r\n0\r\nChecksum: xyz \r\nX-Other:\tv v\r\nEmpty:\r\n\r\nGET",
		data: "abc", trailers: `[{"Checksum" "xyz"} {"X-Other" "v v"} {"Empty" ""}]`, leftover: 3},
	{name: "chunked empty body", req: &chunkedReq, in: "0\r\n\r\n", trailers: "[]"},
	{name: "chunked max", req: &chunkedReq, max: 5, in: "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", data: "abcde", trailers: "[]"},
	{name: "chunked over max", req: &chunkedReq, max: 5, in: "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", data: "abc", err: errTooLarge},
	{name: "chunked over max at once", req: &chunkedReq, max: 5, in: "6\r\nabcdef\r\n0\r\n\r\n", err: errTooLarge},
	// Invalid chunk sizes.
	{name: "size empty", req: &chunkedReq, in: "\r\nabc\r\n", err: errChunkSize},
	{name: "size non-hex", req: &chunkedReq, in: "g\r\n", err: errChunkSize},
	{name: "size 0x prefix", req: &chunkedReq, in: "0x5\r\nhello\r\n0\r\n\r\n", err: errChunkSize},
	{name: "size negative", req: &chunkedReq, in: "-5\r\nhello\r\n", err: errChunkSize},
	{name: "size plus", req: &chunkedReq, in: "+5\r\nhello\r\n", err: errChunkSize},
	{name: "size leading space", req: &chunkedReq, in: " 5\r\nhello\r\n", err: errChunkSize},
	{name: "size trailing space", req: &chunkedReq, in: "5 \r\nhello\r\n0\r\n\r\n", err: errChunkExt},
	{name: "size overflow", req: &chunkedReq, in: "8000000000000000\r\n", err: errChunkSize},
	{name: "size overflow long", req: &chunkedReq, in: "fffffffffffffffffff\r\n", err: errChunkSize},
	{name: "size max int64 ok then sum overflows", req: &chunkedReq, in: "1\r\na\r\n7fffffffffffffff\r\n", data: "a", err: errChunkSize},
	{name: "size line too long", req: &chunkedReq, in: "1;a=" + strings.Repeat("b", MaxChunkLine) + "\r\nx\r\n0\r\n\r\n", err: errChunkLine},
	{name: "size line endless", req: &chunkedReq, in: "1" + strings.Repeat("0", MaxChunkLine+10), err: errChunkLine},
	{name: "size bare LF", req: &chunkedReq, in: "5\nhello\r\n0\r\n\r\n", err: errBareLF},
	{name: "size bare CR", req: &chunkedReq, in: "5\rhello\r\n0\r\n\r\n", err: errChunkSize},
	{name: "last chunk bare LF", req: &chunkedReq, in: "0\n\r\n", err: errBareLF},
	// Invalid extensions.
	{name: "ext empty", req: &chunkedReq, in: "5;\r\nhello\r\n", err: errChunkExt},
	{name: "ext no name", req: &chunkedReq, in: "5;=x\r\nhello\r\n", err: errChunkExt},
	{name: "ext empty value", req: &chunkedReq, in: "5;a=\r\nhello\r\n", err: errChunkExt},
	{name: "ext unterminated quote", req: &chunkedReq, in: "5;a=\"x\r\nhello\r\n", err: errChunkExt},
	{name: "ext space in name", req: &chunkedReq, in: "5;a b\r\nhello\r\n", err: errChunkExt},
	{name: "ext trailing space", req: &chunkedReq, in: "5;a=b \r\nhello\r\n", err: errChunkExt},
	{name: "ext ctl", req: &chunkedReq, in: "5;a=\"\x01\"\r\nhello\r\n", err: errChunkExt},
	{name: "ext bare CR", req: &chunkedReq, in: "5;a\rb\r\nhello\r\n", err: errChunkExt},
	// Missing CRLF after data.
	{name: "data too long", req: &chunkedReq, in: "5\r\nhelloX\r\n0\r\n\r\n", data: "hello", err: errChunkCRLF},
	{name: "data LF only", req: &chunkedReq, in: "5\r\nhello\n0\r\n\r\n", data: "hello", err: errChunkCRLF},
	{name: "data CR only", req: &chunkedReq, in: "5\r\nhello\r0\r\n\r\n", data: "hello", err: errChunkCRLF},
	// Bad trailers.
	{name: "trailer obs-fold", req: &chunkedReq, in: "0\r\nA: b\r\n c\r\n\r\n", err: errObsFold},
	{name: "trailer no colon", req: &chunkedReq, in: "0\r\nAbc\r\n\r\n", err: errNoColon},
	{name: "trailer space before colon", req: &chunkedReq, in: "0\r\nA : b\r\n\r\n", err: errSpaceName},
	{name: "trailer nul", req: &chunkedReq, in: "0\r\nA: \x00\r\n\r\n", err: errFieldValue},
	{name: "trailer bare LF", req: &chunkedReq, in: "0\r\nA: b\n\r\n", err: errBareLF},
	{name: "trailer too large", req: &chunkedReq, in: "0\r\nA: " + strings.Repeat("v", MaxTrailerBytes) + "\r\n\r\n", err: errTrailerTooLarge},
	{name: "trailer content-length", req: &chunkedReq, in: "3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n", data: "abc", err: errTrailerForbidden},
	{name: "trailer host upper", req: &chunkedReq, in: "0\r\nHOST: evil\r\n\r\n", err: errTrailerForbidden},
	{name: "trailer transfer-encoding", req: &chunkedReq, in: "0\r\nX-Ok: 1\r\ntransfer-encoding: chunked\r\n\r\n", err: errTrailerForbidden},
	{name: "trailer content-type", req: &chunkedReq, in: "0\r\nContent-Type: text/html\r\n\r\n", err: errTrailerForbidden},
	{name: "trailer authorization", req: &chunkedReq, in: "0\r\nAuthorization: Basic eDp5\r\n\r\n", err: errTrailerForbidden},
	{name: "trailer trailer", req: &chunkedReq, in: "0\r\nTrailer: X\r\n\r\n", err: errTrailerForbidden},
	{name: "trailer similar names allowed", req: &chunkedReq, in: "0\r\nContent-Lengths: 1\r\nX-Host: h\r\nHosts: h\r\n\r\n",
		trailers: `[{"Content-Lengths" "1"} {"X-Host" "h"} {"Hosts" "h"}]`},
	{name: "trailer too many", req: &chunkedReq, in: "0\r\n" + strings.Repeat("A: b\r\n", MaxTrailerFields+1) + "\r\n", err: errTrailerTooLarge},
}

func TestBodyReader(t *testing.T) {
	for _, c := range bodyCases {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			// Large cases are not split at every byte, to keep the test quick.
			out := allWays(t, len(in), len(in) <= 1024, func(cuts []int) bodyOutcome {
				return driveBody(t, c.req, c.max, in, cuts)
			})
			if c.err != nil {
				if out.status != c.err.Status || out.data != c.data {
					t.Fatalf("got %v, want data %q and %v", out, c.data, c.err)
				}
				var b BodyReader
				b.Init(c.req, c.max)
				if err := runBody(&b, in); err != c.err {
					t.Fatalf("error %v, want %v", err, c.err)
				}
				if _, _, _, err := b.Next(in); err != c.err {
					t.Fatalf("error not repeated: %v", err)
				}
				return
			}
			if !out.done || out.data != c.data || out.trailers != c.trailers || out.leftover != c.leftover {
				t.Fatalf("got %v\nwant data=%q trailers=%s leftover=%d", out, c.data, c.trailers, c.leftover)
			}
		})
	}
}

// runBody calls Next over in until it ends or fails and returns the error.
func runBody(b *BodyReader, in []byte) error {
	for {
		_, n, done, err := b.Next(in)
		if err != nil || done || n == 0 {
			return err
		}
		in = in[n:]
	}
}

func TestBodyReaderRemaining(t *testing.T) {
	var b BodyReader
	b.Init(lengthReq(10), 0)
	if b.Remaining() != 10 {
		t.Fatal(b.Remaining())
	}
	data, n, done, err := b.Next([]byte("0123"))
	if string(data) != "0123" || n != 4 || done || err != nil || b.Remaining() != 6 {
		t.Fatalf("%q %d %v %v remaining %d", data, n, done, err, b.Remaining())
	}
	if cap(data) != 4 {
		t.Fatalf("data capacity %d reaches past the body", cap(data))
	}
	data, n, done, err = b.Next([]byte("456789tail"))
	if string(data) != "456789" || n != 6 || !done || err != nil || b.Remaining() != 0 {
		t.Fatalf("%q %d %v %v remaining %d", data, n, done, err, b.Remaining())
	}
	b.Init(&chunkedReq, 0)
	if b.Remaining() != -1 {
		t.Fatal(b.Remaining())
	}
}

// TestBodyReaderViews checks that data is a view into the input, not a copy, and that
// trailers are copies that survive the input being overwritten.
func TestBodyReaderViews(t *testing.T) {
	in := []byte("5\r\nhello\r\n0\r\nA: b\r\n\r\n")
	var b BodyReader
	b.Init(&chunkedReq, 0)
	data, n, done, err := b.Next(in)
	if err != nil || !done || n != len(in) || string(data) != "hello" || &data[0] != &in[3] {
		t.Fatalf("%q %d %v %v", data, n, done, err)
	}
	for i := range in {
		in[i] = 'Z'
	}
	if tr := b.Trailers(); len(tr) != 1 || string(tr[0].Name) != "A" || string(tr[0].Value) != "b" {
		t.Fatalf("trailers %q", tr)
	}
	// After done, Next reports done without consuming.
	if _, n, done, err := b.Next([]byte("more")); n != 0 || !done || err != nil {
		t.Fatalf("after end: %d %v %v", n, done, err)
	}
}

// TestBodyReaderNoAllocs checks that a reused BodyReader decodes without allocating.
func TestBodyReaderNoAllocs(t *testing.T) {
	in := []byte("5;x=y\r\nhello\r\n3\r\nabc\r\n0\r\nA: b\r\nC: d\r\n\r\n")
	var b BodyReader
	b.Init(&chunkedReq, 0)
	if err := runBody(&b, in); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		b.Init(&chunkedReq, 0)
		if err := runBody(&b, in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per body", allocs)
	}
}

// TestChunkRoundTrip encodes with AppendChunk and AppendLastChunk and decodes with
// BodyReader, fed three ways.
func TestChunkRoundTrip(t *testing.T) {
	var enc []byte
	var want []byte
	for _, p := range []string{"a", "", strings.Repeat("x", 300), "\r\n0\r\n\r\n", strings.Repeat("y", 17)} {
		enc = AppendChunk(enc, []byte(p))
		want = append(want, p...)
	}
	enc = AppendLastChunk(enc, []Header{{Name: []byte("Digest"), Value: []byte("sha-256=abc")}})
	out := bodyAllWays(t, &chunkedReq, 0, enc)
	if !out.done || out.data != string(want) || out.trailers != `[{"Digest" "sha-256=abc"}]` || out.leftover != 0 {
		t.Fatalf("got %v", out)
	}
}
