package nethttp

import (
	"net/url"
	"reflect"
	"testing"
)

// targetCases are request targets for the fast path and for the fallback: every
// one must give what url.ParseRequestURI gives.
var targetCases = []string{
	"/", "/?", "/?q=x", "/a/b.c-d_e~f", "/$&+,/:;=@", "/a?b?c", "/a??", "/a?b#c", "/a#b",
	"/a%20b", "/a%2fb", "/a b", "/a!b", "/a*b", "/a'b", "/a(b)", "/é", "/a?é", "/a?q=%zz",
	"/a?q=\"x\"", "/a?{x}", "//host/path", "///x", "/a\x7f", "/a?\x7f", "/a?\x00", "*",
	"http://h/p?q", "", "a/b", "/a;b?c;d", "/a?q=1&r=2", "/%", "/a%", "/a?%",
}

// checkTarget fails t if parseTarget's answer for target differs from
// url.ParseRequestURI's.
func checkTarget(t *testing.T, target string) {
	t.Helper()
	var x exchange
	got := x.parseTarget(target)
	want, err := url.ParseRequestURI(target)
	if err != nil {
		if got != nil {
			t.Fatalf("%q: parseTarget = %#v, url.ParseRequestURI fails: %v", target, got, err)
		}
		return
	}
	if got == nil || !reflect.DeepEqual(*got, *want) {
		t.Fatalf("%q: parseTarget = %#v, url.ParseRequestURI = %#v", target, got, want)
	}
}

func TestParseTargetMatchesParseRequestURI(t *testing.T) {
	fast := 0
	for _, target := range targetCases {
		checkTarget(t, target)
		if _, _, ok := plainTarget(target); ok {
			fast++
		}
	}
	// The fast path must take the common targets, or the test proves nothing about it.
	for _, target := range []string{"/", "/?", "/?q=x", "/a/b.c-d_e~f", "/$&+,/:;=@", "/a?q=%zz", "/a?{x}"} {
		if _, _, ok := plainTarget(target); !ok {
			t.Errorf("%q: fast path not taken", target)
		}
	}
	if fast == len(targetCases) {
		t.Errorf("every case took the fast path: the fallback is untested")
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, target := range targetCases {
		f.Add(target)
	}
	f.Fuzz(func(t *testing.T, target string) { checkTarget(t, target) })
}
