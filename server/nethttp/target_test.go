package nethttp

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
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

// requestView is what a handler sees of a request's target: the URL, Host and
// RequestURI.
func requestView(r *http.Request) string {
	return fmt.Sprintf("%#v host=%q uri=%q", *r.URL, r.Host, r.RequestURI)
}

// TestRequestTargetMatchesNetHTTP sends request lines of every target form
// through the adapter and checks that a handler sees what net/http's own server
// would give it (http.ReadRequest parses as the server does), and that a target
// net/http refuses is refused. (gale refuses more: an encoded slash, for one, see
// docs/routing.md; such targets are not listed.)
func TestRequestTargetMatchesNetHTTP(t *testing.T) {
	s := startNetHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot) // not 2xx: a CONNECT answer, not a tunnel
		io.WriteString(w, requestView(r))
	}))
	for _, line := range []string{
		"GET /a%20b?q=1", "GET /a;b?c;d", "GET /\xc3\xa9?\xc3\xa9", "GET /?", "GET //h/p", "OPTIONS *",
		"GET http://h.example/p?q", "GET http://H.example:80", "GET http://%c3%a9.example/p",
		"GET http://%41.example/p",
		"CONNECT h.example:443", "CONNECT [::1]:443", "CONNECT %c3%a9.example:443",
		"CONNECT %41.example:443", "CONNECT [zz]:443", "CONNECT [fe80::1%25eth0]:443",
	} {
		raw := line + " HTTP/1.1\r\nHost: host.example\r\n\r\n"
		want := "400"
		if r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw))); err == nil {
			want = "418 " + requestView(r)
		}
		if line == "OPTIONS *" {
			want = "200" // net/http's server answers it before any handler; so does the adapter
		}
		c := testkit.Dial(t, s.Addr())
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		method, _, _ := strings.Cut(line, " ")
		resp := testkit.ReadResponse(t, bufio.NewReader(c), method)
		got := strconv.Itoa(resp.StatusCode)
		if body := testkit.Body(t, resp); resp.StatusCode == http.StatusTeapot {
			got += " " + body
		}
		c.Close()
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", line, got, want)
		}
	}
}
