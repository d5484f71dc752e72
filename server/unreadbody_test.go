package server

import (
	"bufio"
	"io"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// TestUnreadBodyCloseAnnounced: a response that ends without the request body having
// been read, when the rest of the body will not be read and dropped (chunked, more
// than maxDiscard octets left, or an Expect: 100-continue that got no 100), carries
// Connection: close, since the connection closes after it and a pipelined request
// would otherwise be dropped unannounced. A small Content-Length body is dropped and
// the connection stays open.
func TestUnreadBodyCloseAnnounced(t *testing.T) {
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		c.Respond(200, "text/plain", []byte("ok"))
	}), nil)
	next := "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		name, req string
		close     bool
	}{
		{"chunked", "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + next, true},
		{"large", "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n", true},
		{"expect", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", true},
		{"small", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + next, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testkit.Dial(t, s.Addr())
			io.WriteString(c, tc.req)
			br := bufio.NewReader(c)
			resp := testkit.ReadResponse(t, br, "GET")
			if got := testkit.Body(t, resp); got != "ok" {
				t.Fatalf("body %q", got)
			}
			if resp.Close != tc.close {
				t.Fatalf("Connection: close is %v, want %v (header %q)", resp.Close, tc.close, resp.Header.Get("Connection"))
			}
			if !tc.close {
				if got := testkit.Body(t, testkit.ReadResponse(t, br, "GET")); got != "ok" {
					t.Fatalf("pipelined request after a dropped body: %q", got)
				}
				return
			}
			c.CloseWrite()
			rest, err := io.ReadAll(br)
			if err != nil && !isReset(err) {
				t.Fatalf("want close, got %v", err)
			}
			if strings.Contains(string(rest), "HTTP/1.1") {
				t.Fatalf("a response after the announced close: %q", rest)
			}
		})
	}
}
