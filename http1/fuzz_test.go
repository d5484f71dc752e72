package http1

import (
	"bytes"
	"testing"
)

// smallLimits makes the fuzzers reach the limit paths with short inputs.
var smallLimits = Limits{MaxRequestLine: 64, MaxHeaderBytes: 128, MaxHeaderFields: 4, MaxBodyBytes: 100}

// FuzzParseHead checks that any input gives the same outcome fed whole, split in two and
// one byte at a time, and that every accepted head satisfies the framing invariants.
// Seeds live in testdata/fuzz/FuzzParseHead.
func FuzzParseHead(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 4096 {
			return
		}
		for _, lim := range []Limits{{}, smallLimits} {
			whole := allWays(t, len(in), false, func(cuts []int) headOutcome { return driveHead(t, lim, in, cuts) })
			if len(in) > 1 {
				k := 1 + int(in[0])%(len(in)-1)
				if got := driveHead(t, lim, in, []int{k}); !got.equal(whole) {
					t.Fatalf("split at %d:\n got  %v\n want %v", k, got, whole)
				}
			}
		}
		checkHeadInvariants(t, in)
	})
}

// checkHeadInvariants parses the heads in in one after another and checks what an
// accepted head must satisfy.
func checkHeadInvariants(t *testing.T, in []byte) {
	var p Parser
	var r Request
	for len(in) > 0 {
		n, err := p.ParseHead(in, &r)
		if err != nil {
			if err != ErrNeedMore {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("error %T %v", err, err)
				}
			}
			return
		}
		head := in[:n]
		if !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
			t.Fatalf("head %q does not end in CRLF CRLF", head)
		}
		if bytes.Count(head, []byte("\n")) != bytes.Count(head, []byte("\r\n")) {
			t.Fatalf("head %q has a bare LF", head)
		}
		if bytes.Count(head, []byte("\r")) != bytes.Count(head, []byte("\r\n")) {
			t.Fatalf("head %q has a bare CR", head)
		}
		if r.Chunked && r.ContentLength >= 0 {
			t.Fatalf("both chunked and Content-Length %d", r.ContentLength)
		}
		if !IsToken(r.Method) || len(r.Target) == 0 || r.Minor < 0 || r.Minor > 1 {
			t.Fatalf("bad request line in %q", head)
		}
		hosts := 0
		for _, h := range r.Headers {
			if !IsToken(h.Name) {
				t.Fatalf("field name %q", h.Name)
			}
			if bytes.ContainsAny(h.Value, "\r\n\x00") || bytes.HasPrefix(h.Value, []byte(" ")) {
				t.Fatalf("field value %q", h.Value)
			}
			if foldEq(h.Name, "host") {
				hosts++
			}
		}
		if hosts > 1 || r.Minor == 1 && hosts != 1 {
			t.Fatalf("%d Host fields in HTTP/1.%d", hosts, r.Minor)
		}
		if r.KeepAlive && r.Close {
			t.Fatal("KeepAlive with Connection: close")
		}
		in = in[n:]
	}
}

// FuzzBodyReader checks that any body gives the same outcome fed whole, split in two and
// one byte at a time, and that a chunked body that decodes re-encodes to the same data
// and trailers. Seeds live in testdata/fuzz/FuzzBodyReader.
func FuzzBodyReader(f *testing.F) {
	f.Add(true, int64(-1), []byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, chunked bool, cl int64, in []byte) {
		if len(in) > 4096 {
			return
		}
		req := &Request{Chunked: chunked, ContentLength: cl}
		if chunked {
			req.ContentLength = -1
		}
		for _, max := range []int64{0, 16} {
			whole := allWays(t, len(in), false, func(cuts []int) bodyOutcome { return driveBody(t, req, max, in, cuts) })
			if len(in) > 1 {
				k := 1 + int(in[len(in)-1])%(len(in)-1)
				if got := driveBody(t, req, max, in, []int{k}); got.String() != whole.String() {
					t.Fatalf("split at %d:\n got  %v\n want %v", k, got, whole)
				}
			}
		}
		if !chunked {
			return
		}
		var b BodyReader
		b.Init(req, 0)
		var data []byte
		rest := in
		for {
			d, n, done, err := b.Next(rest)
			if err != nil {
				return
			}
			data = append(data, d...)
			rest = rest[n:]
			if done {
				break
			}
			if n == 0 {
				return
			}
		}
		// Re-encode in chunks of up to 7 bytes and decode again.
		var enc []byte
		for p := data; len(p) > 0; {
			k := min(len(p), 7)
			enc = AppendChunk(enc, p[:k])
			p = p[k:]
		}
		trailers := append([]Header(nil), b.Trailers()...)
		enc = AppendLastChunk(enc, trailers)
		var b2 BodyReader
		b2.Init(req, 0)
		var data2 []byte
		for {
			d, n, done, err := b2.Next(enc)
			if err != nil {
				t.Fatalf("re-encoded body %q: %v", enc, err)
			}
			data2 = append(data2, d...)
			enc = enc[n:]
			if done {
				break
			}
			if n == 0 {
				t.Fatalf("re-encoded body stalls at %q", enc)
			}
		}
		if !bytes.Equal(data, data2) || len(enc) != 0 {
			t.Fatalf("round trip: %q became %q (leftover %q)", data, data2, enc)
		}
		tr2 := b2.Trailers()
		if len(tr2) != len(trailers) {
			t.Fatalf("trailers %q became %q", trailers, tr2)
		}
		for i := range tr2 {
			if !bytes.Equal(tr2[i].Name, trailers[i].Name) || !bytes.Equal(tr2[i].Value, trailers[i].Value) {
				t.Fatalf("trailers %q became %q", trailers, tr2)
			}
		}
	})
}
