package server

import (
	"bufio"
	"io"
	"os"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
)

// TestBodyTimeoutWaitsForTheHandler: timeouts.body measures the client, so it runs only
// while the server reads the body. A handler that asks for the body later than that
// (a proxy waiting for its upstream, a net/http handler doing work first) gets it: the
// client sent it at once, or waited for the 100 Continue that only the reading sends.
// The timer used to run from the end of the head, and such requests got 408. Both
// engines, with and without Expect: 100-continue; a body that then stops coming still
// gets 408 once the handler reads.
func TestBodyTimeoutWaitsForTheHandler(t *testing.T) {
	const timeout = 150 * time.Millisecond
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			if _, err := engine.New(engine.Config{Workers: 1, Backend: eng}); err != nil {
				t.Skipf("no %s engine here: %v", eng, err)
			}
			h := HandlerFunc(func(c *Ctx) {
				c.Detach()
				go func() {
					time.Sleep(4 * timeout) // the handler's own work, before the body
					c.Post(func() {
						c.ReadBody(func(b []byte) { c.Respond(200, "text/plain", b) })
					})
				}()
			})
			s := startServer(t, h, func(o *Options) { o.Engine, o.BodyTimeout = eng, timeout })
			for _, tc := range []struct {
				name, head, body string
				expect           bool
				status           int
			}{
				{"sent at once", "Content-Length: 5", "hello", false, 200},
				{"chunked", "Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n", false, 200},
				{"100-continue", "Content-Length: 5\r\nExpect: 100-continue", "hello", true, 200},
				{"stalls", "Content-Length: 10", "hello", false, 408},
			} {
				c := testkit.Dial(t, s.Addr())
				br := bufio.NewReader(c)
				io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\n"+tc.head+"\r\n\r\n")
				if tc.expect {
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					line, err := br.ReadString('\n')
					if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
						t.Fatalf("%s: got %q, %v, want a 100 Continue", tc.name, line, err)
					}
					if rest, err := br.ReadString('\n'); err != nil || rest != "\r\n" {
						t.Fatalf("%s: 100 Continue ends with %q, %v", tc.name, rest, err)
					}
				}
				io.WriteString(c, tc.body)
				resp := testkit.ReadResponse(t, br, "POST")
				body := testkit.Body(t, resp)
				if resp.StatusCode != tc.status || tc.status == 200 && body != "hello" {
					t.Fatalf("%s: status %d body %q, want %d", tc.name, resp.StatusCode, body, tc.status)
				}
				c.Close()
			}
		})
	}
}

// TestHeldBodyUnderResponseTimeout: a handler that pauses a body it reads is not
// blamed on the client either (the body timeout stops while paused), and one that holds
// a body it never asks for is answered 504 when the response timeout expires, not 408.
func TestHeldBodyUnderResponseTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			if _, err := engine.New(engine.Config{Workers: 1, Backend: eng}); err != nil {
				t.Skipf("no %s engine here: %v", eng, err)
			}
			h := HandlerFunc(func(c *Ctx) {
				if string(c.Request().Path) == "/never" {
					return // auto-detach, never asks for the body
				}
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
			})
			s := startServer(t, h, func(o *Options) {
				o.Engine, o.BodyTimeout, o.ResponseTimeout, o.Workers = eng, timeout, 10*timeout, 1
			})
			for _, tc := range []struct {
				path   string
				status int
			}{{"/paused", 200}, {"/never", 504}} {
				c := testkit.Dial(t, s.Addr())
				br := bufio.NewReader(c)
				io.WriteString(c, "POST "+tc.path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
				time.Sleep(timeout / 3)
				io.WriteString(c, "world")
				resp := testkit.ReadResponse(t, br, "POST")
				body := testkit.Body(t, resp)
				if resp.StatusCode != tc.status || tc.status == 200 && body != "helloworld" {
					t.Fatalf("%s: status %d body %q, want %d", tc.path, resp.StatusCode, body, tc.status)
				}
				c.Close()
			}
		})
	}
}

// TestHandlerWritesDoNotExtendBodyTimeout: while a handler reads the body, only the
// client's bytes restart the body timeout: a handler that streams its response while
// the body stalls still has the connection closed once the body timeout passes.
func TestHandlerWritesDoNotExtendBodyTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			if _, err := engine.New(engine.Config{Workers: 1, Backend: eng}); err != nil {
				t.Skipf("no %s engine here: %v", eng, err)
			}
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
			br := bufio.NewReader(c)
			resp := testkit.ReadResponse(t, br, "POST")
			// Far above the body timeout, far below the minute of the other timeouts.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, resp.Body); err == nil || os.IsTimeout(err) {
				t.Fatalf("the stream went on while the body stalled: %v", err)
			}
		})
	}
}
