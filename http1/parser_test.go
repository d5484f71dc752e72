package http1

import (
	"bytes"
	"strings"
	"testing"
)

// okCase is a head that must parse; checks run on the result of a whole-input parse.
type okCase struct {
	name string
	in   string
	n    int // expected consumed bytes, 0 for len(in)
	chk  func(t *testing.T, r *Request)
}

func eqs(t *testing.T, what string, got []byte, exp string) {
	t.Helper()
	if string(got) != exp {
		t.Errorf("%s = %q, want %q", what, got, exp)
	}
}

func eq[T comparable](t *testing.T, what string, got, exp T) {
	t.Helper()
	if got != exp {
		t.Errorf("%s = %v, want %v", what, got, exp)
	}
}

var okCases = []okCase{
	{name: "simple", in: "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eqs(t, "Method", r.Method, "GET")
		eqs(t, "Target", r.Target, "/index.html")
		eqs(t, "Path", r.Path, "/index.html")
		eq(t, "Query nil", r.Query == nil, true)
		eqs(t, "Host", r.Host, "example.com")
		eq(t, "Form", r.Form, FormOrigin)
		eq(t, "Minor", r.Minor, 1)
		eq(t, "ContentLength", r.ContentLength, -1)
		eq(t, "KeepAlive", r.KeepAlive, true)
		eq(t, "Close", r.Close, false)
		eq(t, "len(Headers)", len(r.Headers), 1)
	}},
	{name: "query", in: "GET /a/b?x=1&y=%20?z HTTP/1.1\r\nHost: h\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eqs(t, "Path", r.Path, "/a/b")
		eqs(t, "Query", r.Query, "x=1&y=%20?z")
	}},
	{name: "empty query", in: "GET /? HTTP/1.1\r\nHost: h\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eqs(t, "Path", r.Path, "/")
		eq(t, "Query non-nil", r.Query != nil, true)
		eqs(t, "Query", r.Query, "")
	}},
	{name: "http10 default close", in: "GET / HTTP/1.0\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Minor", r.Minor, 0)
		eq(t, "KeepAlive", r.KeepAlive, false)
		eq(t, "Host nil", r.Host == nil, true)
	}},
	{name: "http10 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "KeepAlive", r.KeepAlive, true)
	}},
	{name: "http10 keep-alive and close", in: "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "KeepAlive", r.KeepAlive, false)
		eq(t, "Close", r.Close, true)
	}},
	{name: "http11 close", in: "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo,  CLOSE \r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "KeepAlive", r.KeepAlive, false)
		eq(t, "Close", r.Close, true)
	}},
	{name: "http12 is 1.1", in: "GET / HTTP/1.2\r\nHost: h\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Minor", r.Minor, 1)
	}},
	{name: "leading empty lines", in: "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eqs(t, "Method", r.Method, "GET")
	}},
	{name: "absolute form", in: "GET http://Example.com:8080/p/q?x HTTP/1.1\r\nHost: other\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Form", r.Form, FormAbsolute)
		eqs(t, "Host", r.Host, "Example.com:8080")
		eqs(t, "Path", r.Path, "/p/q")
		eqs(t, "Query", r.Query, "x")
	}},
	{name: "absolute form empty path", in: "GET HTTPS://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Form", r.Form, FormAbsolute)
		eqs(t, "Path", r.Path, "/")
		eqs(t, "Query", r.Query, "q")
	}},
	{name: "authority form", in: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Form", r.Form, FormAuthority)
		eqs(t, "Host", r.Host, "example.com:443")
		eq(t, "Path empty", len(r.Path), 0)
	}},
	{name: "authority form ipv6", in: "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eqs(t, "Host", r.Host, "[::1]:443")
	}},
	{name: "asterisk form", in: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Form", r.Form, FormAsterisk)
		eqs(t, "Path", r.Path, "*")
	}},
	{name: "content-length", in: "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", n: 49, chk: func(t *testing.T, r *Request) {
		eq(t, "ContentLength", r.ContentLength, 5)
	}},
	{name: "content-length duplicate equal", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 005\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "ContentLength", r.ContentLength, 5)
	}},
	{name: "content-length zero", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "ContentLength", r.ContentLength, 0)
	}},
	{name: "chunked", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Chunked", r.Chunked, true)
		eq(t, "ContentLength", r.ContentLength, -1)
	}},
	{name: "chunked with empty list elements", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked ,\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Chunked", r.Chunked, true)
	}},
	{name: "expect 100-continue", in: "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Expect100", r.Expect100, true)
	}},
	{name: "expect ignored in 1.0", in: "PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Expect100", r.Expect100, false)
	}},
	{name: "upgrade", in: "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Upgrade", r.Upgrade, true)
		eq(t, "HasToken upgrade", r.HasToken("connection", "UPGRADE"), true)
		eq(t, "HasToken websocket", r.HasToken("Upgrade", "websocket"), true)
	}},
	{name: "upgrade without connection token", in: "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Upgrade", r.Upgrade, false)
	}},
	{name: "upgrade ignored in 1.0", in: "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eq(t, "Upgrade", r.Upgrade, false)
	}},
	{name: "ows and empty values", in: "GET / HTTP/1.1\r\nHost:h\r\nA:  \t spaced \t \r\nEmpty:\r\nB:x y\r\n\r\n", chk: func(t *testing.T, r *Request) {
		v, ok := r.Header("a")
		eq(t, "A present", ok, true)
		eqs(t, "A", v, "spaced")
		v, ok = r.Header("EMPTY")
		eq(t, "Empty present", ok, true)
		eqs(t, "Empty", v, "")
		v, _ = r.Header("b")
		eqs(t, "B", v, "x y")
		_, ok = r.Header("missing")
		eq(t, "missing", ok, false)
	}},
	{name: "obs-text in value and target", in: "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n", chk: func(t *testing.T, r *Request) {
		v, _ := r.Header("x")
		eqs(t, "X", v, "caf\xc3\xa9")
		eqs(t, "Path", r.Path, "/caf\xc3\xa9")
	}},
	{name: "lowercase method and odd token", in: "m-search /x HTTP/1.1\r\nHost: h\r\nX-!#$%&'*+.^_`|~: v\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eqs(t, "Method", r.Method, "m-search")
		_, ok := r.Header("x-!#$%&'*+.^_`|~")
		eq(t, "odd header", ok, true)
	}},
	{name: "ipv6 host header", in: "GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eqs(t, "Host", r.Host, "[2001:db8::1]:8080")
	}},
	{name: "empty host header beside an absolute-form target", in: "GET http://a.example/ HTTP/1.1\r\nHost:\r\n\r\n", chk: func(t *testing.T, r *Request) {
		eqs(t, "Host", r.Host, "a.example")
	}},
	{name: "duplicate fields kept in order", in: "GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nAccept: b\r\nTE: trailers;q=1, deflate\r\n\r\n", chk: func(t *testing.T, r *Request) {
		v, _ := r.Header("accept")
		eqs(t, "first Accept", v, "a")
		eqs(t, "second Accept", r.Headers[2].Value, "b")
		eq(t, "TE trailers", r.HasToken("te", "trailers"), true)
		eq(t, "TE gzip", r.HasToken("te", "gzip"), false)
	}},
}

func TestParseHeadOK(t *testing.T) {
	for _, c := range okCases {
		t.Run(c.name, func(t *testing.T) {
			out := headAllWays(t, Limits{}, []byte(c.in))
			if out.status != 0 || len(out.reqs) == 0 {
				t.Fatalf("did not parse: %v", out)
			}
			var p Parser
			var r Request
			n, err := p.ParseHead([]byte(c.in), &r)
			if err != nil {
				t.Fatal(err)
			}
			exp := c.n
			if exp == 0 {
				exp = len(c.in)
			}
			eq(t, "consumed", n, exp)
			c.chk(t, &r)
		})
	}
}

// errCase is a head that must fail with err.
type errCase struct {
	name string
	in   string
	err  *Error
}

var errCases = []errCase{
	// Request line.
	{"double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", errRequestLine},
	{"leading space", " GET / HTTP/1.1\r\nHost: h\r\n\r\n", errRequestLine},
	{"trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", errVersion},
	{"tab separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", errRequestLine},
	{"no version", "GET /\r\nHost: h\r\n\r\n", errRequestLine},
	{"lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", errVersion},
	{"two digit minor", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", errVersion},
	{"version letters", "GET / HTTP/1.x\r\nHost: h\r\n\r\n", errVersion},
	{"http2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", errVersionSupport},
	{"http09", "GET / HTTP/0.9\r\n\r\n", errVersionSupport},
	{"method bad char", "GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", errMethod},
	{"method nul", "G\x00T / HTTP/1.1\r\nHost: h\r\n\r\n", errMethod},
	{"target fragment", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"target ctl", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"target del", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"target relative", "GET example.com HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"asterisk not options", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"connect origin form", "CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"connect no port", "CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"connect empty port", "CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"connect ipv6 no port", "CONNECT [::1] HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"absolute ftp", "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"absolute userinfo", "GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"absolute empty host", "GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"too many empty lines", strings.Repeat("\r\n", 9) + "GET / HTTP/1.1\r\nHost: h\r\n\r\n", errLeadingLines},
	{"bare CR in request line", "GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", errTarget},
	{"bare CR request line end", "GET / HTTP/1.1\rHost: h\r\n\r\n", errVersion},
	// Line endings.
	{"bare LF request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", errBareLF},
	{"bare LF field line", "GET / HTTP/1.1\r\nHost: h\n\r\n", errBareLF},
	{"bare LF final", "GET / HTTP/1.1\r\nHost: h\r\n\n", errBareLF},
	{"bare LF leading", "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", errBareLF},
	{"CR CR LF", "GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", errFieldValue},
	// Field lines.
	{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", errObsFold},
	{"obs-fold tab", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", errObsFold},
	{"space before first field", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", errObsFold},
	{"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", errSpaceName},
	{"tab before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", errSpaceName},
	{"space before colon CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\n", errSpaceName},
	{"bad name char", "GET / HTTP/1.1\r\nHost: h\r\nX(y): v\r\n\r\n", errFieldName},
	{"non-ascii name", "GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: v\r\n\r\n", errFieldName},
	{"empty name", "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", errFieldName},
	{"no colon", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", errNoColon},
	{"nul in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", errFieldValue},
	{"ctl in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", errFieldValue},
	{"del in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n", errFieldValue},
	{"bare CR in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", errFieldValue},
	{"bare CR in name", "GET / HTTP/1.1\r\nHost: h\r\nX\r: b\r\n\r\n", errFieldName},
	{"bare CR line", "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n\r\n", errFieldName},
	// Host.
	{"no host", "GET / HTTP/1.1\r\n\r\n", errHostMissing},
	{"no host absolute", "GET http://h/ HTTP/1.1\r\n\r\n", errHostMissing},
	{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", errHostMany},
	{"two hosts 1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", errHostMany},
	{"host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", errHostInvalid},
	{"empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", errHostInvalid},
	{"empty host, spaces", "GET / HTTP/1.1\r\nHost:   \r\n\r\n", errHostInvalid},
	{"empty host on HTTP/1.0", "GET / HTTP/1.0\r\nHost: \r\n\r\n", errHostInvalid},
	{"empty host with OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n", errHostInvalid},
	{"host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", errHostInvalid},
	{"host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", errHostInvalid},
	{"host bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", errHostInvalid},
	{"host unclosed bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", errHostInvalid},
	// Content-Length.
	{"CL and TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", errCLAndTE},
	{"TE and CL", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", errCLAndTE},
	{"CL differing", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", errCLConflict},
	{"CL list equal", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", errCLInvalid},
	{"CL list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1,1\r\n\r\n", errCLInvalid},
	{"CL negative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", errCLInvalid},
	{"CL plus", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", errCLInvalid},
	{"CL hex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", errCLInvalid},
	{"CL empty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", errCLInvalid},
	{"CL inner space", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", errCLInvalid},
	{"CL overflow", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", errCLInvalid},
	{"CL bad then good", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\nContent-Length: 1\r\n\r\n", errCLInvalid},
	// Transfer-Encoding.
	{"TE gzip only", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", errTENotChunked},
	{"TE identity", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", errTENotChunked},
	{"TE chunked then gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", errTENotChunked},
	{"TE chunked twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", errTENotChunked},
	{"TE chunked two lines", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", errTENotChunked},
	{"TE chunked param", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", errTENotChunked},
	{"TE empty", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", errTENotChunked},
	{"TE quoted", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", errTENotChunked},
	{"TE chunked misspelt", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunkedx\r\n\r\n", errTENotChunked},
	{"TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", errTE10},
	{"TE gzip chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", errTEUnsupported},
	{"TE gzip chunked two lines", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", errTEUnsupported},
	// Expect.
	{"expect other", "PUT / HTTP/1.1\r\nHost: h\r\nExpect: fancy\r\n\r\n", errExpect},
	{"expect continue and other", "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x=y\r\n\r\n", errExpect},
}

func TestParseHeadErrors(t *testing.T) {
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			out := headAllWays(t, Limits{}, []byte(c.in))
			if out.status != c.err.Status || out.reason != c.err.Reason || len(out.reqs) != 0 {
				t.Fatalf("got %v, want %v", out, c.err)
			}
		})
	}
}

// TestParseHeadErrorOrder checks that cross-field errors do not depend on field order.
func TestParseHeadErrorOrder(t *testing.T) {
	a := "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: x\r\nExpect: z\r\n\r\n"
	b := "POST / HTTP/1.1\r\nExpect: z\r\nContent-Length: x\r\nTransfer-Encoding: gzip\r\nHost: h\r\n\r\n"
	oa, ob := headAllWays(t, Limits{}, []byte(a)), headAllWays(t, Limits{}, []byte(b))
	if oa.status != 400 || oa.reason != errCLInvalid.Reason || !oa.equal(ob) {
		t.Fatalf("got %v and %v", oa, ob)
	}
}

func TestParseHeadLimits(t *testing.T) {
	lim := Limits{MaxRequestLine: 20, MaxHeaderBytes: 30, MaxHeaderFields: 3, MaxBodyBytes: 10}
	line20 := "GET /" + strings.Repeat("a", 6) + " HTTP/1.1" // exactly 20 bytes
	if len(line20) != 20 {
		t.Fatal(len(line20))
	}
	cases := []errCase{
		{"request line at limit", line20 + "\r\nHost: h\r\n\r\n", nil},
		{"request line over limit", "GET /" + strings.Repeat("a", 7) + " HTTP/1.1\r\nHost: h\r\n\r\n", errURITooLong},
		{"request line over limit unterminated", "GET /" + strings.Repeat("a", 30), errURITooLong},
		{"request line over limit bare LF", "GET /" + strings.Repeat("a", 7) + " HTTP/1.1\nHost: h\r\n\r\n", errURITooLong},
		// Header bytes: "Host: h\r\n" is 9, "X: 0123456789012345\r\n" is 21 → 30.
		{"header bytes at limit", "GET / HTTP/1.1\r\nHost: h\r\nX: 0123456789012345\r\n\r\n", nil},
		{"header bytes over limit", "GET / HTTP/1.1\r\nHost: h\r\nX: 01234567890123456\r\n\r\n", errHeaderTooLarge},
		{"header bytes over limit unterminated", "GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("v", 40), errHeaderTooLarge},
		{"fields at limit", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", nil},
		{"fields over limit", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", errTooManyFields},
		{"body at limit", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", nil},
		{"body over limit", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", errTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := headAllWays(t, lim, []byte(c.in))
			if c.err != nil && (out.status != c.err.Status || out.reason != c.err.Reason) {
				t.Fatalf("got %v, want %v", out, c.err)
			}
			if c.err == nil && (out.status != 0 || len(out.reqs) != 1) {
				t.Fatalf("got %v, want one request", out)
			}
		})
	}
}

// TestParseHeadLimitsEarly checks that the default limits stop endless input as soon as
// it passes them, whether it comes all at once or a byte at a time.
func TestParseHeadLimitsEarly(t *testing.T) {
	long := []byte("GET /" + strings.Repeat("a", 9<<10))
	var p Parser
	var r Request
	if _, err := p.ParseHead(long, &r); err != errURITooLong {
		t.Fatalf("9 KiB request line: %v, want 414", err)
	}
	if got := failsAt(long); got != DefaultMaxRequestLine+1 {
		t.Fatalf("byte at a time: failed after %d bytes, want %d", got, DefaultMaxRequestLine+1)
	}

	head := "GET / HTTP/1.1\r\nHost: h\r\n"
	var hb bytes.Buffer
	hb.WriteString(head)
	for hb.Len() < len(head)+70<<10 {
		hb.WriteString("X-Filler: 0123456789012345678901234567890123456789\r\n")
	}
	p.Limits.MaxHeaderFields = 1 << 20
	if _, err := p.ParseHead(hb.Bytes(), &r); err != errHeaderTooLarge {
		t.Fatalf("70 KiB header: %v, want 431", err)
	}
	p = Parser{}
	if _, err := p.ParseHead(hb.Bytes(), &r); err != errTooManyFields {
		t.Fatalf("70 KiB header with default field limit: %v, want 431 too many fields", err)
	}

	one := []byte("GET / HTTP/1.1\r\nX: " + strings.Repeat("v", 70<<10))
	want := len("GET / HTTP/1.1\r\n") + DefaultMaxHeaderBytes + 1
	if got := failsAt(one); got != want {
		t.Fatalf("one endless field byte at a time: failed after %d bytes, want %d", got, want)
	}
}

// failsAt feeds in one byte at a time, appending to one growing buffer, and returns the
// length of the prefix at which ParseHead first returned an *Error (0 if never).
func failsAt(in []byte) int {
	var p Parser
	var r Request
	for k := 1; k <= len(in); k++ {
		_, err := p.ParseHead(in[:k], &r)
		if err != nil && err != ErrNeedMore {
			return k
		}
	}
	return 0
}

// TestParseHeadPipelined feeds several heads back to back, including bodies that the
// test skips by Content-Length as the engine would via BodyReader.
func TestParseHeadPipelined(t *testing.T) {
	heads := []string{
		"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n",
		"\r\nHEAD /2 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
		"GET /3?x HTTP/1.0\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	}
	in := []byte(strings.Join(heads, "") + "GET /partial HTTP/1.1\r\nHo")
	out := headAllWays(t, Limits{}, in)
	if len(out.reqs) != len(heads) || out.status != 0 || out.leftover != len("GET /partial HTTP/1.1\r\nHo") {
		t.Fatalf("got %v", out)
	}
	for i, h := range heads {
		var p Parser
		var r Request
		n, err := p.ParseHead([]byte(h), &r)
		if err != nil || snapRequest(&r, n) != out.reqs[i] {
			t.Fatalf("head %d alone: %v %q, pipelined %q", i, err, snapRequest(&r, n), out.reqs[i])
		}
	}
	// An error after good heads keeps the good ones.
	bad := append([]byte(heads[0]), "GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n"...)
	out = headAllWays(t, Limits{}, bad)
	if len(out.reqs) != 1 || out.status != 400 {
		t.Fatalf("got %v", out)
	}
}

// TestParseHeadResetAndReuse checks Reset and that header storage is reused.
func TestParseHeadResetAndReuse(t *testing.T) {
	var p Parser
	var r Request
	if _, err := p.ParseHead([]byte("GET / HTTP/1.1\r\nHost: a\r\nX"), &r); err != ErrNeedMore {
		t.Fatal(err)
	}
	p.Reset()
	// After Reset a different, shorter input parses afresh.
	in := []byte("GET /b HTTP/1.1\r\nHost: b\r\nA: 1\r\nB: 2\r\n\r\n")
	n, err := p.ParseHead(in, &r)
	if err != nil || n != len(in) || string(r.Path) != "/b" || len(r.Headers) != 3 {
		t.Fatalf("n=%d err=%v %s", n, err, snapRequest(&r, n))
	}
	backing := &r.Headers[:1][0]
	if _, err := p.ParseHead(in, &r); err != nil {
		t.Fatal(err)
	}
	if &r.Headers[:1][0] != backing {
		t.Fatal("Headers backing array was not reused")
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = p.ParseHead(in, &r) })
	if allocs != 0 {
		t.Fatalf("ParseHead allocated %v times per run", allocs)
	}
}

func TestErrorString(t *testing.T) {
	if got := errURITooLong.Error(); got != "http1: 414 request line too long" {
		t.Fatal(got)
	}
	if FormAuthority.String() != "authority-form" || Form(9).String() != "invalid-form" {
		t.Fatal("Form.String")
	}
}

// TestParserHead: Head reports a HEAD request's head whether it parsed, failed or is
// still incomplete (after the empty lines skipped before it), so that the error that
// answers it can leave out its body; Reset clears it.
func TestParserHead(t *testing.T) {
	for _, tc := range []struct {
		in   string
		head bool
	}{
		{"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"HEAD / HTTP/1.1\r\nHost: x\r\n", true},
		{"HEAD / HTTP/1.1\r\n\r\n", true},
		{"HEAD /" + strings.Repeat("a", 9000), true},
		{"\r\n\r\nHEAD / HTTP/2.0\r\n\r\n", true},
		{"HEAD", false},
		{"HEADER / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"head / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: x\r\nHEAD / HTTP/1.1\r\n", false},
	} {
		var p Parser
		var r Request
		_, err := p.ParseHead([]byte(tc.in), &r)
		if p.Head() != tc.head {
			t.Errorf("%.40q (err %v): Head() = %v, want %v", tc.in, err, p.Head(), tc.head)
		}
		p.Reset()
		if p.Head() {
			t.Errorf("%.40q: Head() after Reset", tc.in)
		}
	}
}
