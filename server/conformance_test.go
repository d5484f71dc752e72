package server

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
)

// headKinds answers each path with a different kind of response, so that HEAD can be
// checked against all of them.
var headKinds = HandlerFunc(func(c *Ctx) {
	switch string(c.Request().Path) {
	case "/stream": // unknown length: chunked for GET
		c.WriteHeader(200)
		c.WriteString("abc")
		c.End()
	case "/stream-trailer":
		c.Header().Set("Trailer", "X-T")
		c.Trailer().Set("X-T", "v")
		c.WriteHeader(200)
		c.WriteString("abc")
		c.End()
	case "/end":
		c.End()
	case "/respond":
		c.Respond(200, "text/plain", []byte("hello"))
	case "/error":
		c.Error(404, "nope")
	case "/204":
		c.WriteHeader(204)
		c.End()
	case "/304":
		c.WriteHeader(304)
		c.WriteString("ignored")
		c.End()
	default:
		c.Respond(200, "text/plain", c.Request().Path)
	}
})

// TestHeadNeverHasBody pipelines a HEAD and a GET on one connection for every response
// kind: the GET's answer must come right after the HEAD's head, with no stray bytes (a
// last chunk, a body) in between, and the connection must stay open.
func TestHeadNeverHasBody(t *testing.T) {
	s := startServer(t, headKinds, nil)
	for _, path := range []string{"/stream", "/stream-trailer", "/end", "/respond", "/error", "/204", "/304"} {
		for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
			t.Run(path+" "+proto, func(t *testing.T) {
				c := testkit.Dial(t, s.Addr())
				keep := "Host: x\r\n"
				if proto == "HTTP/1.0" {
					keep = "Connection: keep-alive\r\n"
				}
				io.WriteString(c, "HEAD "+path+" "+proto+"\r\n"+keep+"\r\nGET /next "+proto+"\r\n"+keep+"\r\n")
				br := bufio.NewReader(c)
				resp := testkit.ReadResponse(t, br, "HEAD")
				if resp.Close {
					t.Fatal("HEAD response closes the connection")
				}
				if b := testkit.Body(t, resp); b != "" {
					t.Fatalf("HEAD body %q", b)
				}
				next := testkit.ReadResponse(t, br, "GET")
				if got := testkit.Body(t, next); got != "/next" {
					t.Fatalf("response after HEAD: %d %q", next.StatusCode, got)
				}
			})
		}
	}
}

// TestHeadErrorHasNoBody: the answer to a HEAD request that the server refuses before
// any handler sees it (a malformed or oversized head, a 505, a head that does not
// arrive in time) has no body either, only the Content-Length of the text a GET would
// get (RFC 9110 §9.3.2), as nginx does; a GET gets the text.
func TestHeadErrorHasNoBody(t *testing.T) {
	s := startServer(t, headKinds, func(o *Options) { o.HeaderTimeout = 300 * time.Millisecond })
	for _, tc := range []struct {
		name, head string
		status     int
	}{
		{"no host", " / HTTP/1.1\r\n\r\n", 400},
		{"space before colon", " / HTTP/1.1\r\nHost: x\r\nX : y\r\n\r\n", 400},
		{"after empty lines", " /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"version", " / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"request line too long", " /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		{"header too large", " / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 70000) + "\r\n\r\n", 431},
		{"header timeout", " / HTTP/1.1\r\nHost: x\r\n", 408},
	} {
		for _, method := range []string{"HEAD", "GET"} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				c := testkit.Dial(t, s.Addr())
				lead := ""
				if tc.name == "after empty lines" {
					lead = "\r\n\r\n"
				}
				io.WriteString(c, lead+method+tc.head)
				br := bufio.NewReader(c)
				resp := testkit.ReadResponse(t, br, method)
				if resp.StatusCode != tc.status || !resp.Close || resp.ContentLength <= 0 {
					t.Fatalf("status %d close %v length %d, want %d, close and the text's length", resp.StatusCode, resp.Close, resp.ContentLength, tc.status)
				}
				if method == "HEAD" {
					expectClosed(t, br) // no body bytes between the head and the close
					return
				}
				if body := testkit.Body(t, resp); int64(len(body)) != resp.ContentLength {
					t.Fatalf("GET error body %q, Content-Length %d", body, resp.ContentLength)
				}
			})
		}
	}
}

// TestHeadGoClientReusesConnection: Go's client keeps the connection after HEAD of a
// streamed response (it drops it when stray body bytes follow).
func TestHeadGoClientReusesConnection(t *testing.T) {
	s := startServer(t, headKinds, nil)
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	for i := 0; i < 3; i++ {
		resp, err := cl.Head("http://" + s.Addr() + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		resp, err = cl.Get("http://" + s.Addr() + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		if got := testkit.Body(t, resp); got != "abc" {
			t.Fatalf("GET body %q", got)
		}
	}
	if n := s.Stats().Accepted; n != 1 {
		t.Fatalf("%d connections for 6 requests; want 1", n)
	}
}

// TestForbiddenTrailersRejected: request trailers that would change framing, routing
// or authentication are refused with 400, as net/http does; ordinary ones reach the
// handler.
func TestForbiddenTrailersRejected(t *testing.T) {
	got := make(chan string, 1)
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		c.ReadBody(func([]byte) {
			var names []string
			for _, h := range c.body.Trailers() {
				names = append(names, string(h.Name))
			}
			got <- strings.Join(names, ",")
			c.Respond(200, "text/plain", []byte("ok"))
		})
	}), nil)
	for _, name := range []string{"Content-Length: 3", "Host: evil", "Transfer-Encoding: chunked", "Content-Type: text/html", "Authorization: Basic eDp5", "trailer: x"} {
		t.Run(name, func(t *testing.T) {
			expectRejected(t, s.Addr(), "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"+name+"\r\n\r\n", 400)
		})
	}
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n")
	if b := testkit.Body(t, testkit.ReadResponse(t, bufio.NewReader(c), "POST")); b != "ok" {
		t.Fatalf("allowed trailer: body %q", b)
	}
	if names := <-got; names != "X-Checksum" {
		t.Fatalf("trailers seen by the handler: %q", names)
	}
}

// TestForbiddenResponseTrailersDropped: a handler cannot send a framing field as a
// trailer.
func TestForbiddenResponseTrailersDropped(t *testing.T) {
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		c.Trailer().Set("Content-Length", "99")
		c.Trailer().Set("X-Sum", "3")
		c.WriteHeader(200)
		c.WriteString("abc")
		c.End()
	}), nil)
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp := testkit.ReadResponse(t, bufio.NewReader(c), "GET")
	if b := testkit.Body(t, resp); b != "abc" || resp.Trailer.Get("X-Sum") != "3" || resp.Trailer.Get("Content-Length") != "" {
		t.Fatalf("body %q trailers %v", b, resp.Trailer)
	}
}

// TestRefusedHeadsCounted: every request the protocol layer refuses before any
// handler counts once in Stats.BadRequests, the head that did not arrive in time
// (408) included, which was answered but never counted (gale_http_bad_requests_total
// stayed at 0 for slow clients). Both engines.
func TestRefusedHeadsCounted(t *testing.T) {
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			if _, err := engine.New(engine.Config{Workers: 1, Backend: eng}); err != nil {
				t.Skipf("no %s engine here: %v", eng, err)
			}
			s := startServer(t, headKinds, func(o *Options) { o.Engine, o.HeaderTimeout = eng, 300*time.Millisecond })
			for i, tc := range []struct {
				name, req string
				status    int
			}{
				{"malformed", "GET / HTTP/1.1\r\n\r\n", 400},
				{"version", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
				{"request line too long", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
				{"header too large", "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 70000) + "\r\n\r\n", 431},
				{"head timeout", "GET / HTTP/1.1\r\nHost: x\r\n", 408},
			} {
				c := testkit.Dial(t, s.Addr())
				io.WriteString(c, tc.req)
				resp := testkit.ReadResponse(t, bufio.NewReader(c), "GET")
				c.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
				}
				// Counted before the answer is written: no wait needed.
				if got := s.Stats().BadRequests; got != uint64(i+1) {
					t.Fatalf("%s: %d bad requests counted after %d refusals", tc.name, got, i+1)
				}
			}
		})
	}
}
