package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
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

// TestEndedMidBodyCloses: a response that ends while the request body is still
// arriving, on a connection that closes after it, closes the connection once the
// response is out instead of waiting for the rest of the body: a body that stalled
// (the 408 of the body timeout, whose timer has then fired) or a handler that answers
// with Connection: close. The connection used to wait for the missing bytes with no
// timer left, so a client that sent part of a small body held it forever. Both
// engines.
func TestEndedMidBodyCloses(t *testing.T) {
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			if _, err := engine.New(engine.Config{Workers: 1, Backend: eng}); err != nil {
				t.Skipf("no %s engine here: %v", eng, err)
			}
			for _, tc := range []struct {
				name   string
				h      HandlerFunc
				body   time.Duration
				status int
			}{
				{"body timeout", func(c *Ctx) { c.ReadBody(func([]byte) { c.Respond(200, "", nil) }) }, 200 * time.Millisecond, 408},
				{"close response", func(c *Ctx) { c.SetKeepAlive(false); c.Respond(200, "", []byte("ok")) }, time.Minute, 200},
			} {
				t.Run(tc.name, func(t *testing.T) {
					s := startServer(t, tc.h, func(o *Options) { o.Engine, o.BodyTimeout = eng, tc.body })
					c := testkit.Dial(t, s.Addr())
					io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
					br := bufio.NewReader(c)
					resp := testkit.ReadResponse(t, br, "POST")
					testkit.Body(t, resp)
					if resp.StatusCode != tc.status || !resp.Close {
						t.Fatalf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, tc.status)
					}
					// Far below the minute of body timeout, far above a loaded machine's delay.
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					expectClosed(t, br)
				})
			}
		})
	}
}

// TestBodyTimeoutSparesEndedResponse: a response that has ended while the rest of the
// request body was still due is sent whole, however the wait for that body ends: the
// body timeout while a small body was to be dropped, the client's half-close, or the
// body timer left over when the connection closes after the response (a chunked body
// nobody read). Each of them used to close the connection at once and cut a response
// still queued (a download). Both engines.
func TestBodyTimeoutSparesEndedResponse(t *testing.T) {
	const size = 16 << 20
	big := bytes.Repeat([]byte("x"), size)
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			if _, err := engine.New(engine.Config{Workers: 1, Backend: eng}); err != nil {
				t.Skipf("no %s engine here: %v", eng, err)
			}
			const timeout = 100 * time.Millisecond
			s := startServer(t, HandlerFunc(func(c *Ctx) { c.Respond(200, "", big) }), func(o *Options) {
				o.Engine, o.BodyTimeout = eng, timeout
			})
			for _, tc := range []struct {
				name, framing, body string
				halfClose           bool
			}{
				{"dropping", "Content-Length: 10", "abc", false},
				{"half-close", "Content-Length: 10", "abc", true},
				{"closing", "Transfer-Encoding: chunked", "5\r\nab", false},
			} {
				c := testkit.Dial(t, s.Addr())
				c.SetReadBuffer(64 << 10)
				io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\n"+tc.framing+"\r\n\r\n"+tc.body)
				if tc.halfClose {
					c.CloseWrite()
				}
				// Read nothing for several body timeouts, so that the timer (or the
				// FIN) comes while most of the response is still queued (a shorter
				// wait can only make the test pass without exercising the case,
				// never fail it).
				time.Sleep(5 * timeout)
				br := bufio.NewReader(c)
				resp := testkit.ReadResponse(t, br, "POST")
				n, err := io.Copy(io.Discard, resp.Body)
				if err != nil || n != size {
					t.Fatalf("%s: got %d of %d body bytes: %v", tc.name, n, size, err)
				}
				// The connection closes after the response (whose head may have gone
				// out keep-alive, when the body was small enough to drop).
				expectClosed(t, br)
			}
		})
	}
}

// TestShutdownSparesEndedResponse: a graceful shutdown finds a connection whose
// response has ended while the rest of a small request body (to be dropped) is still
// due: the response goes out and the connection closes at once, so the shutdown
// completes, instead of waiting for that body until the grace period ends.
func TestShutdownSparesEndedResponse(t *testing.T) {
	s := startServer(t, HandlerFunc(func(c *Ctx) { c.Respond(200, "", []byte("ok")) }), func(o *Options) { o.BodyTimeout = time.Minute })
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
	br := bufio.NewReader(c)
	if got := testkit.Body(t, testkit.ReadResponse(t, br, "POST")); got != "ok" {
		t.Fatalf("body %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v (the connection waited for the rest of the body)", err)
	}
	expectClosed(t, br)
}

// TestClosingPumpSparesFile: a connection that closes after a file response read
// through the file pump (a stream that cannot sendfile, as under TLS), whose request
// body nobody read, keeps its body timer stopped while the pump still reads the file:
// the file arrives whole.
func TestClosingPumpSparesFile(t *testing.T) {
	const size = 16 << 20
	f := patternFile(t, size)
	const timeout = 100 * time.Millisecond
	s := startServer(t, fileHandler(f, size), func(o *Options) { o.BodyTimeout = timeout })
	c := testkit.Dial(t, listenNoSendfile(t, s, fileHandler(f, size)))
	c.SetReadBuffer(64 << 10)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
	time.Sleep(5 * timeout) // as in TestBodyTimeoutSparesEndedResponse
	br := bufio.NewReader(c)
	resp := testkit.ReadResponse(t, br, "POST")
	if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != size {
		t.Fatalf("got %d of %d file bytes: %v", n, size, err)
	}
	expectClosed(t, br)
}

// TestSetResponseTimeoutOverridesTheServers: a handler's Ctx.SetResponseTimeout
// replaces Options.ResponseTimeout for its request: a bound far shorter than the
// server's answers 504 long before the server's would, and -1 lets a handler that
// posts its answer after several of the server's timeouts complete it.
func TestSetResponseTimeoutOverridesTheServers(t *testing.T) {
	const d = 150 * time.Millisecond
	h := HandlerFunc(func(c *Ctx) {
		switch string(c.Path()) {
		case "/short":
			c.SetResponseTimeout(d) // and never answers
		case "/off":
			c.SetResponseTimeout(-1)
			c.Loop().AfterFunc(5*d, func() { c.Respond(200, "text/plain", []byte("late")) })
		}
	})
	long := startServer(t, h, func(o *Options) { o.ResponseTimeout = time.Minute })
	short := startServer(t, h, func(o *Options) { o.ResponseTimeout = d })
	for _, tc := range []struct {
		s    *Server
		path string
		want int
	}{{long, "/short", 504}, {short, "/off", 200}} {
		c := testkit.Dial(t, tc.s.Addr()) // its 20 s deadline is far below the minute
		io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp := testkit.ReadResponse(t, bufio.NewReader(c), "GET")
		testkit.Body(t, resp)
		if resp.StatusCode != tc.want {
			t.Fatalf("%s: status %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
}
