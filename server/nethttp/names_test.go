package nethttp

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

func TestCommonNameIsCanonicalHeaderKey(t *testing.T) {
	for _, name := range []string{"accept", "Accept", "ACCEPT", "user-agent", "x-forwarded-for",
		"X-Custom", "x_y", "a b", "", "sec-websocket-key", "Sec-WebSocket-Key", "te", "TE"} {
		if got, want := commonName([]byte(name)), http.CanonicalHeaderKey(name); got != want {
			t.Errorf("commonName(%q) = %q, want %q", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { commonName([]byte("user-agent")) }); n != 0 {
		t.Errorf("a common name costs %v allocations", n)
	}
}

// TestNetHTTPRequestHeaderAsNetHTTPParsesIt: the handler's r.Header, r.Host and
// r.RequestURI are what net/http's own parser makes of the same bytes, and each
// value slice can be appended to without touching another field's.
func TestNetHTTPRequestHeaderAsNetHTTPParsesIt(t *testing.T) {
	raw := "GET /p/q?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nuser-agent: t/1\r\n" +
		"Accept: a\r\nX-Multi: one\r\naccept: b\r\nX-Weird_Name: w\r\nx-multi: two\r\n" +
		"Cookie: c=1\r\nX-Empty:\r\nCONTENT-type: text/x\r\n\r\n"
	want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *http.Request, 1)
	s := startNetHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before := r.Header.Clone()
		for k := range before {
			r.Header[k] = append(r.Header[k], "appended")
		}
		for k, vs := range before {
			if !reflect.DeepEqual(r.Header[k][:len(vs)], vs) {
				t.Errorf("appending to the fields changed %s: %q, was %q", k, r.Header[k], vs)
			}
		}
		r.Header = before
		got <- r
	}))
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, raw)
	testkit.Body(t, testkit.ReadResponse(t, bufio.NewReader(c), "GET"))
	r := <-got
	if !reflect.DeepEqual(r.Header, want.Header) {
		t.Errorf("Header\n got %q\nwant %q", r.Header, want.Header)
	}
	if r.Host != want.Host || r.RequestURI != want.RequestURI || *r.URL != *want.URL {
		t.Errorf("Host %q URI %q URL %#v, want %q %q %#v", r.Host, r.RequestURI, r.URL, want.Host, want.RequestURI, want.URL)
	}
}
