package server

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestResponseTimeoutAnswers504: a handler that returns without ending its response
// (auto-detach) and never comes back no longer holds the connection forever: the
// client gets 504 and the connection closes, with or without a request body.
func TestResponseTimeoutAnswers504(t *testing.T) {
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		if c.Request().ContentLength > 0 {
			c.ReadBody(func([]byte) {}) // reads the body, never answers
		}
	}), func(o *Options) { o.ResponseTimeout = 200 * time.Millisecond })
	for _, req := range []string{
		"GET /forgotten HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /forgotten HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
	} {
		c := testkit.Dial(t, s.Addr())
		io.WriteString(c, req)
		br := bufio.NewReader(c)
		resp := testkit.ReadResponse(t, br, "GET")
		if resp.StatusCode != 504 || !resp.Close {
			t.Fatalf("status %d close %v, want 504 and close", resp.StatusCode, resp.Close)
		}
		testkit.Body(t, resp)
		expectClosed(t, br)
	}
}

// TestResponseTimeoutClosesStalledStream: once the head is out, a stalled handler's
// connection is closed (the client sees a truncated chunked body).
func TestResponseTimeoutClosesStalledStream(t *testing.T) {
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		c.WriteHeader(200)
		c.WriteString("partial")
	}), func(o *Options) { o.ResponseTimeout = 200 * time.Millisecond })
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp := testkit.ReadResponse(t, bufio.NewReader(c), "GET")
	b, err := io.ReadAll(resp.Body)
	if err == nil || string(b) != "partial" {
		t.Fatalf("want truncated body \"partial\" with an error, got %q, %v", b, err)
	}
}

// TestResponseTimeoutSparesProgress: the response timeout is the longest gap between
// a handler's writes, not a deadline for the whole response: a stream that writes
// every 20ms for three times the timeout completes (the gap between writes stays far
// below the timeout even on a loaded machine).
func TestResponseTimeoutSparesProgress(t *testing.T) {
	const pieces = 75
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		go func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < pieces; i++ {
				<-tick.C
				last := i == pieces-1
				c.Post(func() {
					c.WriteString("x")
					if last {
						c.End()
					}
				})
			}
		}()
	}), func(o *Options) { o.ResponseTimeout = 500 * time.Millisecond })
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp := testkit.ReadResponse(t, bufio.NewReader(c), "GET")
	if got := testkit.Body(t, resp); got != strings.Repeat("x", pieces) {
		t.Fatalf("body %q", got)
	}
}
