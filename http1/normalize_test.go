package http1

import (
	"bytes"
	"strings"
	"testing"
)

var normalizeCases = []struct {
	in, out string
	status  int
}{
	{"/", "/", 0},
	{"/a/b.txt", "/a/b.txt", 0},
	{"/a/b/", "/a/b/", 0},
	{"/a;b/c", "/a;b/c", 0},
	{"/a./b..", "/a./b..", 0},
	{"/.well-known/x", "/.well-known/x", 0},
	{"/...", "/...", 0},
	{"/.a/..b", "/.a/..b", 0},
	{"/%70rivate/x", "/private/x", 0},
	{"/%70RIVATE", "/pRIVATE", 0},
	{"/priv%61te/", "/private/", 0},
	{"/%7e%7E", "/~~", 0},
	{"/%25", "/%", 0},
	{"/%252e%252e/x", "/%2e%2e/x", 0},
	{"/a%20b%3F%23", "/a b?#", 0},
	{"/%C3%A9", "/\xc3\xa9", 0},
	{"/\xff", "/\xff", 0},
	{"//", "/", 0},
	{"//a//b//", "/a/b/", 0},
	{"/./a", "/a", 0},
	{"/a/.", "/a/", 0},
	{"/a/./", "/a/", 0},
	{"/a/..", "/", 0},
	{"/a/../", "/", 0},
	{"/a/b/../c", "/a/c", 0},
	{"/a/b/../../c", "/c", 0},
	{"/a/%2E%2E/b", "/b", 0},
	{"/a/%2e./b", "/b", 0},
	{"/a/.%2E/b", "/b", 0},
	{"/%2e/a", "/a", 0},
	{"/a//../b", "/b", 0},
	{"/private/../private/x", "/private/x", 0},
	{"", "", 400},
	{"a/b", "", 400},
	{"*", "", 400},
	{"/..", "", 400},
	{"/../a", "", 400},
	{"/a/../..", "", 400},
	{"/a/../../b", "", 400},
	{"/%2e%2e", "", 400},
	{"//..", "", 400},
	{"/a%2Fb", "", 400},
	{"/a%2fb", "", 400},
	{"/a/..%2Fb", "", 400},
	{"/a\\b", "", 400},
	{"/a%5Cb", "", 400},
	{"/a%5cb", "", 400},
	{"/a%00", "", 400},
	{"/a\x00", "", 400},
	{"/a%0A", "", 400},
	{"/a%7F", "", 400},
	{"/a%1f", "", 400},
	{"/%", "", 400},
	{"/%4", "", 400},
	{"/%zz", "", 400},
	{"/%4g", "", 400},
	{"/%%41", "", 400},
	{"/a/..;/b", "", 400},
	{"/a/.;x/b", "", 400},
	{"/..;", "", 400},
	{"/%2e%2e;x/b", "", 400},
}

func TestNormalizePath(t *testing.T) {
	for _, tc := range normalizeCases {
		got, err := NormalizePath(nil, []byte(tc.in))
		switch {
		case tc.status != 0 && (err == nil || err.Status != tc.status):
			t.Errorf("NormalizePath(%q) = %q, %v; want status %d", tc.in, got, err, tc.status)
		case tc.status == 0 && (err != nil || string(got) != tc.out):
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", tc.in, got, err, tc.out)
		case tc.status == 0:
			checkNormal(t, []byte(tc.in), got)
		}
	}
}

// TestNormalizePathNoCopy checks that a normal path is returned as itself, without
// allocating, and that a path needing work is written to dst without allocating when
// dst has room.
func TestNormalizePathNoCopy(t *testing.T) {
	in := []byte("/assets/app.9f3c.js")
	got, _ := NormalizePath(nil, in)
	if &got[0] != &in[0] || len(got) != len(in) {
		t.Fatalf("normal path was copied")
	}
	dst := make([]byte, 0, 64)
	odd := []byte("//assets/./%61pp.js")
	allocs := testing.AllocsPerRun(100, func() {
		NormalizePath(nil, in)
		NormalizePath(dst, odd)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func TestNormPathInRequest(t *testing.T) {
	cases := []struct{ head, norm string }{
		{"GET /a/b?x HTTP/1.1\r\nHost: h\r\n\r\n", "/a/b"},
		{"GET //a/./%62?x=/../ HTTP/1.1\r\nHost: h\r\n\r\n", "/a/b"},
		{"GET http://h/%70//q?x HTTP/1.1\r\nHost: h\r\n\r\n", "/p/q"},
		{"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", "/"},
		{"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "*"},
		{"CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", ""},
	}
	for _, tc := range cases {
		var p Parser
		var r Request
		if _, err := p.ParseHead([]byte(tc.head), &r); err != nil {
			t.Fatalf("%q: %v", tc.head, err)
		}
		if string(r.NormPath) != tc.norm {
			t.Errorf("%q: NormPath %q, want %q", tc.head, r.NormPath, tc.norm)
		}
	}
	for _, target := range []string{"/%00", "/a%2Fb", "/..", "/%zz", "http://h/../x", "/a\\b"} {
		var p Parser
		var r Request
		_, err := p.ParseHead([]byte("GET "+target+" HTTP/1.1\r\nHost: h\r\n\r\n"), &r)
		if e, ok := err.(*Error); !ok || e.Status != 400 {
			t.Errorf("target %q: %v, want a 400 *Error", target, err)
		}
	}
}

func TestHostName(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"example.com", "example.com"},
		{"Example.COM.", "Example.COM"},
		{"example.com:8080", "example.com"},
		{"example.com.:8080", "example.com"},
		{"example.com..", "example.com."},
		{"[::1]", "::1"},
		{"[::1]:80", "::1"},
		{"[::1", "[::1"},
		{".", "."},
		{"", ""},
	} {
		if got := HostName([]byte(tc.in)); string(got) != tc.out {
			t.Errorf("HostName(%q) = %q, want %q", tc.in, got, tc.out)
		}
	}
}

// checkNormal asserts what every result n of NormalizePath(in) satisfies.
func checkNormal(t *testing.T, in, n []byte) {
	t.Helper()
	if len(n) == 0 || n[0] != '/' {
		t.Fatalf("NormalizePath(%q) = %q: does not start with /", in, n)
	}
	for _, bad := range []string{"//", "/./", "/../", "\\", "\x00"} {
		if bytes.Contains(n, []byte(bad)) {
			t.Fatalf("NormalizePath(%q) = %q: contains %q", in, n, bad)
		}
	}
	if bytes.HasSuffix(n, []byte("/.")) || bytes.HasSuffix(n, []byte("/..")) {
		t.Fatalf("NormalizePath(%q) = %q: ends in a dot segment", in, n)
	}
	for _, c := range n {
		if c < ' ' || c == 0x7f {
			t.Fatalf("NormalizePath(%q) = %q: control byte", in, n)
		}
	}
	// Never above the root: each segment is a real name, so the depth never goes
	// negative, and the result is one of the prefixes a walk can reach.
	for _, seg := range strings.Split(string(n[1:]), "/") {
		if seg == ".." || seg == "." {
			t.Fatalf("NormalizePath(%q) = %q: dot segment", in, n)
		}
	}
	// Idempotent, also through the escaped form a proxy or a link would send.
	if !bytes.Contains(n, []byte("%")) {
		again, err := NormalizePath(nil, n)
		if err != nil || !bytes.Equal(again, n) {
			t.Fatalf("NormalizePath(%q) = %q, normalizes again to %q, %v", in, n, again, err)
		}
	}
	esc := AppendEscapedPath(nil, n)
	again, err := NormalizePath(nil, esc)
	if err != nil || !bytes.Equal(again, n) {
		t.Fatalf("NormalizePath(%q) = %q, escaped %q normalizes to %q, %v", in, n, esc, again, err)
	}
	if !normalPath(esc) && !bytes.Contains(esc, []byte("%")) {
		t.Fatalf("escaped form %q of %q is not normal", esc, n)
	}
}

// FuzzNormalizePath checks the invariants of NormalizePath on any input, and that its
// answer agrees with a reference built on segment lists. Seeds live in
// testdata/fuzz/FuzzNormalizePath.
func FuzzNormalizePath(f *testing.F) {
	for _, tc := range normalizeCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		dst := make([]byte, 0, 8)
		n, err := NormalizePath(dst, in)
		want, ok := referenceNormalize(in)
		if (err == nil) != ok {
			t.Fatalf("NormalizePath(%q) = %q, %v; reference %q, %v", in, n, err, want, ok)
		}
		if err != nil {
			if err.Status != 400 {
				t.Fatalf("NormalizePath(%q): status %d", in, err.Status)
			}
			return
		}
		if string(n) != want {
			t.Fatalf("NormalizePath(%q) = %q; reference %q", in, n, want)
		}
		checkNormal(t, in, n)
	})
}

// referenceNormalize is a slow, obviously-correct NormalizePath: split on '/', decode
// each segment, then walk the segments with a stack.
func referenceNormalize(in []byte) (string, bool) {
	if len(in) == 0 || in[0] != '/' {
		return "", false
	}
	var stack []string
	segs := strings.Split(string(in[1:]), "/")
	dir := false
	for _, raw := range segs {
		var seg []byte
		for i := 0; i < len(raw); i++ {
			c := raw[i]
			if c == '%' {
				if i+2 >= len(raw) || unhex(raw[i+1]) < 0 || unhex(raw[i+2]) < 0 {
					return "", false
				}
				c = byte(unhex(raw[i+1])<<4 | unhex(raw[i+2]))
				i += 2
				if c == '/' {
					return "", false
				}
			}
			if c == '\\' || c < ' ' || c == 0x7f {
				return "", false
			}
			seg = append(seg, c)
		}
		s := string(seg)
		dir = false
		switch {
		case s == "" || s == ".":
			dir = true
		case s == "..":
			if len(stack) == 0 {
				return "", false
			}
			stack, dir = stack[:len(stack)-1], true
		case strings.HasPrefix(s, ".;") || strings.HasPrefix(s, "..;"):
			return "", false
		default:
			stack = append(stack, s)
		}
	}
	out := "/" + strings.Join(stack, "/")
	if dir && len(stack) > 0 {
		out += "/"
	}
	return out, true
}

func BenchmarkNormalizePath(b *testing.B) {
	dst := make([]byte, 0, 64)
	for _, p := range []string{"/articles/2024/fast-servers.html", "//articles/./2024/%66ast-servers.html"} {
		path := []byte(p)
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NormalizePath(dst, path)
			}
		})
	}
}
