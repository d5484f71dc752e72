package server

import (
	"bufio"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
)

// onEngines runs f on epoll and on io_uring, skipping io_uring where the machine
// lacks it.
func onEngines(t *testing.T, f func(t *testing.T, eng string)) {
	bothEngines(t, func(t *testing.T, eng string) {
		if _, err := engine.New(engine.Config{Workers: 1, Backend: eng}); err != nil {
			t.Skipf("no %s engine here: %v", eng, err)
		}
		f(t, eng)
	})
}

// bodyExchange sends a POST head with the given framing fields, waits for a 100
// Continue first when expect is set, sends body, and checks the response's status and,
// for a 200, that it echoes want.
func bodyExchange(t *testing.T, addr, path, fields, body string, expect bool, status int, want string) {
	t.Helper()
	c := testkit.Dial(t, addr)
	defer c.Close()
	br := bufio.NewReader(c)
	io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\n"+fields+"\r\n\r\n")
	if expect {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("%s: got %q, %v, want a 100 Continue", path, line, err)
		}
		if rest, err := br.ReadString('\n'); err != nil || rest != "\r\n" {
			t.Fatalf("%s: 100 Continue ends with %q, %v", path, rest, err)
		}
	}
	writeSplit(c, body)
	resp := testkit.ReadResponse(t, br, "POST")
	got := testkit.Body(t, resp)
	if resp.StatusCode != status || status == 200 && got != want {
		t.Fatalf("%s: status %d body %q, want %d", path, resp.StatusCode, got, status)
	}
}

// writeSplit writes body in two halves a little apart, so that the server reads it in
// two pieces.
func writeSplit(c net.Conn, body string) {
	io.WriteString(c, body[:len(body)/2])
	time.Sleep(50 * time.Millisecond)
	io.WriteString(c, body[len(body)/2:])
}

// TestBodyTimeoutWaitsForTheHandler: timeouts.body measures the client, so it runs only
// while the server reads the body. A handler that asks for the body later than that
// (a proxy waiting for its upstream, a net/http handler doing work first) gets it: the
// client sent it at once, or waited for the 100 Continue that only the reading sends.
// The timer used to run from the end of the head, and such requests got 408. A body that
// then stops coming still gets 408 once the handler reads. A handler that pauses a body
// it reads is not blamed on the client either (the body timeout stops while paused), and
// one that holds a body it never asks for is answered 504 when the response timeout
// expires, not 408.
func TestBodyTimeoutWaitsForTheHandler(t *testing.T) {
	const timeout = 150 * time.Millisecond
	onEngines(t, func(t *testing.T, eng string) {
		h := HandlerFunc(func(c *Ctx) {
			switch string(c.Request().Path) {
			case "/never":
				return // auto-detach, never asks for the body
			case "/paused":
				var got []byte
				c.OnBody(func(p []byte, end bool) {
					got = append(got, p...)
					if end {
						c.Respond(200, "text/plain", got)
						return
					}
					if len(got) == len(p) { // after the first piece
						c.PauseBody()
						c.Loop().After(3*timeout, c.ResumeBody) // past the body timeout
					}
				})
				return
			}
			c.Detach()
			go func() {
				time.Sleep(4 * timeout) // the handler's own work, before the body
				c.Post(func() {
					c.ReadBody(func(b []byte) { c.Respond(200, "text/plain", b) })
				})
			}()
		})
		s := startServer(t, h, func(o *Options) {
			o.Engine, o.BodyTimeout, o.ResponseTimeout, o.Workers = eng, timeout, 10*timeout, 1
		})
		for _, tc := range []struct {
			path, fields, body string
			expect             bool
			status             int
		}{
			{"/sent", "Content-Length: 10", "helloworld", false, 200},
			{"/chunked", "Transfer-Encoding: chunked", "a\r\nhelloworld\r\n0\r\n\r\n", false, 200},
			{"/continue", "Content-Length: 10\r\nExpect: 100-continue", "helloworld", true, 200},
			{"/stalls", "Content-Length: 20", "helloworld", false, 408},
			{"/paused", "Content-Length: 10", "helloworld", false, 200},
			{"/never", "Content-Length: 10", "helloworld", false, 504},
		} {
			bodyExchange(t, s.Addr(), tc.path, tc.fields, tc.body, tc.expect, tc.status, "helloworld")
		}
	})
}

// TestHandlerWritesDoNotExtendBodyTimeout: while a handler reads the body, only the
// client's bytes restart the body timeout: a handler that streams its response while
// the body stalls still has the connection closed once the body timeout passes.
func TestHandlerWritesDoNotExtendBodyTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	onEngines(t, func(t *testing.T, eng string) {
		h := HandlerFunc(func(c *Ctx) {
			c.OnBody(func([]byte, bool) {})
			c.WriteHeader(200)
			var tick func()
			tick = func() {
				if _, err := c.WriteString("x"); err == nil {
					c.Loop().After(timeout/4, tick)
				}
			}
			tick()
		})
		s := startServer(t, h, func(o *Options) { o.Engine, o.BodyTimeout, o.Workers = eng, timeout, 1 })
		c := testkit.Dial(t, s.Addr())
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
		resp := testkit.ReadResponse(t, bufio.NewReader(c), "POST")
		// Far above the body timeout, far below the minute of the other timeouts.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, resp.Body); err == nil || os.IsTimeout(err) {
			t.Fatalf("the stream went on while the body stalled: %v", err)
		}
	})
}
