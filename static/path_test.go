package static

import (
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		raw     string
		rel     string
		dir     bool
		dotfile bool
		status  int
	}{
		{raw: "/", rel: "", dir: true},
		{raw: "/index.html", rel: "index.html"},
		{raw: "/a/b/c.txt", rel: "a/b/c.txt"},
		{raw: "/a/b/", rel: "a/b", dir: true},
		{raw: "//a///b//", rel: "a/b", dir: true},
		{raw: "/a/./b", rel: "a/b"},
		{raw: "/a/.", rel: "a", dir: true},
		{raw: "/a/%2e", rel: "a", dir: true},
		{raw: "/hello%20world.txt", rel: "hello world.txt"},
		{raw: "/%E2%82%AC.txt", rel: "\u20ac.txt"},
		{raw: "/%252e%252e/x", rel: "%2e%2e/x"},
		{raw: "/..;/x", status: 400},
		{raw: "/a;b/x", rel: "a;b/x"},
		{raw: "/.well-knownx/y", rel: ".well-knownx/y", dotfile: true},
		{raw: "/a/.well-known", rel: "a/.well-known"},
		{raw: "/...", rel: "...", dotfile: true},
		{raw: "/.env", rel: ".env", dotfile: true},
		{raw: "/a/.git/config", rel: "a/.git/config", dotfile: true},
		{raw: "/%2egit/config", rel: ".git/config", dotfile: true},
		{raw: "/.well-known/acme-challenge/t", rel: ".well-known/acme-challenge/t"},
		{raw: "/a.b/c", rel: "a.b/c"},
		{raw: "/..", status: 400},
		{raw: "/../x", status: 400},
		{raw: "/a/../b", rel: "b"},
		{raw: "/a/%2e%2e/b/", rel: "b", dir: true},
		{raw: "/%2e%2e/x", status: 400},
		{raw: "/%2E%2E/x", status: 400},
		{raw: "/.%2e/x", status: 400},
		{raw: "/a%2fb", status: 400},
		{raw: "/a%2Fb", status: 400},
		{raw: "/a%5cb", status: 400},
		{raw: "/a\\b", status: 400},
		{raw: "/a%00b", status: 400},
		{raw: "/a\x00b", status: 400},
		{raw: "/a%0d%0aSet-Cookie:x", status: 400},
		{raw: "/a%7f", status: 400},
		{raw: "/%", status: 400},
		{raw: "/%2", status: 400},
		{raw: "/%zz", status: 400},
		{raw: "/%g0", status: 400},
		{raw: "", status: 400},
		{raw: "a/b", status: 400},
		{raw: "*", status: 400},
		{raw: "http://h/x", status: 400},
		{raw: "/" + strings.Repeat("a", maxPathLen), status: 414},
	}
	for _, tt := range tests {
		p, status := cleanPath([]byte(tt.raw))
		if status != tt.status {
			t.Errorf("cleanPath(%q) status %d, want %d", tt.raw, status, tt.status)
			continue
		}
		if status != 0 {
			continue
		}
		if p.rel != tt.rel || p.dir != tt.dir || p.dotfile != tt.dotfile {
			t.Errorf("cleanPath(%q) = %+v, want rel %q dir %v dotfile %v", tt.raw, p, tt.rel, tt.dir, tt.dotfile)
		}
	}
	if _, status := cleanPath([]byte("/" + strings.Repeat("a", maxPathLen-1))); status != 0 {
		t.Errorf("path of exactly maxPathLen bytes: status %d", status)
	}
}

func TestEscapePathRoundTrip(t *testing.T) {
	for _, rel := range []string{"a b/c?d#e", "100%/x", "\u20ac/\xff", "a:b", "q\"<>"} {
		esc := escapePath(rel)
		p, status := cleanPath([]byte("/" + esc))
		if status != 0 || p.rel != rel {
			t.Errorf("escapePath(%q) = %q, cleans to %q (status %d)", rel, esc, p.rel, status)
		}
		if strings.ContainsAny(esc, "?# \"<>") {
			t.Errorf("escapePath(%q) = %q keeps a reserved byte", rel, esc)
		}
	}
}

// checkCleaned asserts the invariants every successful cleanPath result has.
func checkCleaned(t *testing.T, raw []byte, p cleanedPath) {
	t.Helper()
	if strings.HasPrefix(p.rel, "/") || strings.HasSuffix(p.rel, "/") {
		t.Fatalf("cleanPath(%q): rel %q has an edge slash", raw, p.rel)
	}
	if strings.ContainsAny(p.rel, "\\\x00\r\n") {
		t.Fatalf("cleanPath(%q): rel %q has a forbidden byte", raw, p.rel)
	}
	if p.rel == "" {
		return
	}
	for seg := range strings.SplitSeq(p.rel, "/") {
		if seg == "" || seg == "." || seg == ".." {
			t.Fatalf("cleanPath(%q): rel %q has segment %q", raw, p.rel, seg)
		}
		if strings.HasPrefix(seg, ".") && seg != ".well-known" && !p.dotfile {
			t.Fatalf("cleanPath(%q): dot segment %q not flagged", raw, seg)
		}
	}
	again, status := cleanPath([]byte("/" + escapePath(p.rel)))
	if status != 0 || again.rel != p.rel {
		t.Fatalf("cleanPath(%q): rel %q does not round-trip (%q, %d)", raw, p.rel, again.rel, status)
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/a/../b", "/%2e%2e/", "/%252e", "/a%2fb", "/.env", "//x//", "/a%00", "/\u20ac"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, status := cleanPath(raw)
		switch status {
		case 0:
			checkCleaned(t, raw, p)
		case 400, 414:
		default:
			t.Fatalf("cleanPath(%q): status %d", raw, status)
		}
	})
}

func TestLinkable(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "100%": true, "q?#": true, "\xff": true, `a"b'c`: true, "a;b": true,
		strings.Repeat("x", 300): true, `a\b`: false, "a\nb": false, "a\x7f": false,
		"..;x": false, ".;": false, "...": true,
	} {
		if got := linkable(name); got != want {
			t.Errorf("linkable(%q) = %v, want %v", name, got, want)
		}
	}
}
