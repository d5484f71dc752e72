package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// TestProxyVia checks the optional Via entries (RFC 9110 §7.6.3): none by
// default; with a pseudonym, one naming the protocol each message was received
// with, after the entries it already carried, on the request sent upstream and
// on the response sent back.
func TestProxyVia(t *testing.T) {
	o := echoHeadOrigin(t)
	off := startProxy(t, testUpstream(t, []netip.AddrPort{o.addr()}, nil), Route{}, nil)
	if got := roundTrip(t, off, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); strings.Contains(got, "Via") {
		t.Errorf("Via without the option:\n%s", got)
	}
	on := startProxy(t, testUpstream(t, []netip.AddrPort{o.addr()}, nil), Route{Via: "edge-1"}, nil)
	for _, tc := range []struct{ req, want string }{
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", "Via: 1.1 edge-1\n"},
		{"GET / HTTP/1.0\r\nHost: h\r\n\r\n", "Via: 1.0 edge-1\n"},
		{"GET / HTTP/1.1\r\nHost: h\r\nVia: 1.1 cdn\r\n\r\n", "Via: 1.1 cdn\nVia: 1.1 edge-1\n"},
	} {
		if got := roundTrip(t, on, tc.req); !strings.Contains(got, tc.want) {
			t.Errorf("%q: origin did not see %q:\n%s", tc.req, tc.want, got)
		}
	}

	// The response: the origin's own Via entry (HTTP/1.0 response) first, then gale's.
	o10 := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		if _, err := readRequestHead(br, log); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.0 200 OK\r\nVia: 1.1 inner\r\nContent-Length: 2\r\n\r\nok")
	})
	addr := startProxy(t, testUpstream(t, []netip.AddrPort{o10.addr()}, nil), Route{Via: "edge-1"}, nil)
	resp, body := get(t, &http.Client{}, "http://"+addr+"/")
	if v := resp.Header.Values("Via"); body != "ok" || len(v) != 2 || v[0] != "1.1 inner" || v[1] != "1.0 edge-1" {
		t.Fatalf("response Via %q, body %q", v, body)
	}
}
