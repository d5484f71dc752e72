package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// startServer runs h on 127.0.0.1:0 and shuts it down when the test ends.
func startServer(t testing.TB, h Handler, mod func(*Options)) *Server {
	t.Helper()
	opts := Options{Handler: h, Workers: 2}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.Start()
	shutdownAtCleanup(t, s)
	return s
}

// shutdownAtCleanup shuts s down gracefully when the test ends.
func shutdownAtCleanup(t testing.TB, s *Server) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
}

// echoPath answers with the request path, and with the body for POST.
var echoPath = HandlerFunc(func(c *Ctx) {
	if string(c.Request().Method) == "POST" {
		c.ReadBody(func(body []byte) {
			c.Respond(200, "text/plain", append([]byte(string(c.Request().Path)+":"), body...))
		})
		return
	}
	c.Respond(200, "text/plain", []byte(c.Request().Path))
})

// expectClosed asserts the server closes the connection (EOF or reset) after
// whatever remains buffered.
func expectClosed(t testing.TB, br *bufio.Reader) {
	t.Helper()
	rest, err := io.ReadAll(br)
	if err != nil && !isReset(err) {
		t.Fatalf("want close, got %v", err)
	}
	if len(rest) != 0 {
		t.Fatalf("unexpected bytes before close: %q", rest)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe"))
}

func TestKeepAliveReuse(t *testing.T) {
	s := startServer(t, echoPath, nil)
	c := testkit.Dial(t, s.Addr())
	br := bufio.NewReader(c)
	for i := 0; i < 5; i++ {
		fmt.Fprintf(c, "GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		resp := testkit.ReadResponse(t, br, "GET")
		if got := testkit.Body(t, resp); got != fmt.Sprintf("/r%d", i) {
			t.Fatalf("request %d: body %q", i, got)
		}
		if resp.Close {
			t.Fatal("server asked to close a keep-alive connection")
		}
		if resp.Header.Get("Date") == "" || resp.Header.Get("Server") != "gale" {
			t.Fatalf("missing Date/Server: %v", resp.Header)
		}
	}
	if st := s.Stats(); st.Accepted != 1 || st.Requests != 5 {
		t.Fatalf("accepted %d conns for %d requests; want 1 and 5", st.Accepted, st.Requests)
	}
}

func TestPipelined100InOrder(t *testing.T) {
	s := startServer(t, echoPath, nil)
	c := testkit.Dial(t, s.Addr())
	var buf bytes.Buffer
	for i := 0; i < 100; i++ {
		if i%10 == 3 {
			fmt.Fprintf(&buf, "POST /p%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nbody%d", i, len(strconv.Itoa(i))+4, i)
		} else {
			fmt.Fprintf(&buf, "GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		}
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i := 0; i < 100; i++ {
		resp := testkit.ReadResponse(t, br, "GET")
		want := fmt.Sprintf("/p%d", i)
		if i%10 == 3 {
			want += fmt.Sprintf(":body%d", i)
		}
		if got := testkit.Body(t, resp); got != want {
			t.Fatalf("response %d: got %q want %q", i, got, want)
		}
	}
}

func TestSlowHeaderTimeout(t *testing.T) {
	s := startServer(t, echoPath, func(o *Options) { o.HeaderTimeout = 300 * time.Millisecond })
	c := testkit.Dial(t, s.Addr())
	start := time.Now()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	br := bufio.NewReader(c)
	resp := testkit.ReadResponse(t, br, "GET")
	if resp.StatusCode != 408 {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
	testkit.Body(t, resp)
	expectClosed(t, br)
	if el := time.Since(start); el < 250*time.Millisecond || el > 5*time.Second {
		t.Fatalf("closed after %v; header timeout is 300ms", el)
	}
}

func TestIdleTimeoutCloses(t *testing.T) {
	s := startServer(t, echoPath, func(o *Options) { o.IdleTimeout = 200 * time.Millisecond })
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	testkit.Body(t, testkit.ReadResponse(t, br, "GET"))
	expectClosed(t, br)
}

func TestHalfClose(t *testing.T) {
	s := startServer(t, echoPath, nil)
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET /half HTTP/1.1\r\nHost: x\r\n\r\n")
	c.CloseWrite()
	br := bufio.NewReader(c)
	if got := testkit.Body(t, testkit.ReadResponse(t, br, "GET")); got != "/half" {
		t.Fatalf("got %q", got)
	}
	expectClosed(t, br)
}

func TestHTTP10CloseAndKeepAlive(t *testing.T) {
	s := startServer(t, echoPath, nil)
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	br := bufio.NewReader(c)
	resp := testkit.ReadResponse(t, br, "GET")
	if testkit.Body(t, resp) != "/k" || resp.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("1.0 keep-alive not honoured: %v", resp.Header)
	}
	io.WriteString(c, "GET /c HTTP/1.0\r\n\r\n")
	if got := testkit.Body(t, testkit.ReadResponse(t, br, "GET")); got != "/c" {
		t.Fatalf("got %q", got)
	}
	expectClosed(t, br)
}

// TestSmuggling sends each ambiguous or malformed request and expects 400 (or the
// documented status) followed by a closed connection.
func TestSmuggling(t *testing.T) {
	cases := []struct {
		name, req string
		status    int
	}{
		{"cl and te", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"two cl", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
		{"bad cl", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400},
		{"cl hex", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", 400},
		{"te not final chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
		{"obs fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400},
		{"bare cr", "GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
		{"nul in header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400},
		{"missing chunk crlf", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"bad version", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
	}
	s := startServer(t, echoPath, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { expectRejected(t, s.Addr(), tc.req, tc.status) })
	}
}

func TestLimits(t *testing.T) {
	s := startServer(t, echoPath, func(o *Options) {
		o.Limits.MaxRequestLine = 1024
		o.Limits.MaxHeaderBytes = 4096
		o.Limits.MaxHeaderFields = 10
		o.Limits.MaxBodyBytes = 100
	})
	cases := []struct {
		name, req string
		status    int
	}{
		{"long line", "GET /" + strings.Repeat("a", 2000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		{"big header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 5000) + "\r\n\r\n", 431},
		{"many fields", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-F: 1\r\n", 20) + "\r\n", 431},
		{"big body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("z", 1000), 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { expectRejected(t, s.Addr(), tc.req, tc.status) })
	}
}

func TestChunkedRequestAndTrailers(t *testing.T) {
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		c.ReadBody(func(b []byte) {
			c.Trailer().Set("X-Sum", strconv.Itoa(len(b)))
			c.Header().Set("Trailer", "X-Sum")
			c.WriteHeader(200)
			c.Write(b)
			c.End()
		})
	}), nil)
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: v\r\n\r\n")
	br := bufio.NewReader(c)
	resp := testkit.ReadResponse(t, br, "POST")
	if got := testkit.Body(t, resp); got != "hello world" {
		t.Fatalf("body %q", got)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("response not chunked: %v", resp.TransferEncoding)
	}
	if resp.Trailer.Get("X-Sum") != "11" {
		t.Fatalf("trailer %v", resp.Trailer)
	}
}

func TestExpectContinue(t *testing.T) {
	s := startServer(t, echoPath, nil)
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("want 100 Continue first, got %q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "abc")
	if got := testkit.Body(t, testkit.ReadResponse(t, br, "POST")); got != "/e:abc" {
		t.Fatalf("got %q", got)
	}
}

func TestEarlyHints(t *testing.T) {
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		var h Header
		h.Add("Link", "</style.css>; rel=preload; as=style")
		c.WriteInformational(103, &h)
		c.Respond(200, "text/plain", []byte("ok"))
	}), nil)
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	first, _ := br.ReadString('\n')
	if first != "HTTP/1.1 103 Early Hints\r\n" {
		t.Fatalf("first line %q", first)
	}
	link, _ := br.ReadString('\n')
	if !strings.HasPrefix(link, "Link: </style.css>") {
		t.Fatalf("link line %q", link)
	}
	br.ReadString('\n')
	if got := testkit.Body(t, testkit.ReadResponse(t, br, "GET")); got != "ok" {
		t.Fatalf("got %q", got)
	}
}

func TestHeadHasNoBody(t *testing.T) {
	s := startServer(t, echoPath, nil)
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp := testkit.ReadResponse(t, br, "HEAD")
	if resp.ContentLength != 2 {
		t.Fatalf("HEAD Content-Length %d, want 2", resp.ContentLength)
	}
	testkit.Body(t, resp)
	if got := testkit.Body(t, testkit.ReadResponse(t, br, "GET")); got != "/g" {
		t.Fatalf("after HEAD got %q", got)
	}
}

// TestAsyncHandlerPipelined: a handler that answers from another goroutine keeps
// pipelined responses in order.
func TestAsyncHandlerPipelined(t *testing.T) {
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		path := string(c.Request().Path)
		c.Detach()
		go func() {
			time.Sleep(time.Millisecond)
			c.Post(func() { c.Respond(200, "text/plain", []byte(path)) })
		}()
	}), nil)
	c := testkit.Dial(t, s.Addr())
	var buf bytes.Buffer
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&buf, "GET /a%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
	}
	c.Write(buf.Bytes())
	br := bufio.NewReader(c)
	for i := 0; i < 20; i++ {
		if got := testkit.Body(t, testkit.ReadResponse(t, br, "GET")); got != fmt.Sprintf("/a%d", i) {
			t.Fatalf("response %d: %q", i, got)
		}
	}
}

func TestClientResetMidResponse(t *testing.T) {
	closed := make(chan error, 1)
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		c.OnClose(func(err error) { closed <- err })
		var pump func()
		pump = func() {
			for c.Buffered() < 512<<10 {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
			c.OnDrain(pump)
		}
		pump()
	}), nil)
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	io.ReadFull(c, make([]byte, 100<<10))
	c.SetLinger(0)
	c.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not notice the reset")
	}
	// The server keeps serving.
	c2 := testkit.Dial(t, s.Addr())
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp := testkit.ReadResponse(t, bufio.NewReader(c2), "GET")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// expectRejected sends req and asserts the answer has status, says Connection: close,
// and is followed by the server closing the connection.
func expectRejected(t *testing.T, addr, req string, status int) {
	t.Helper()
	c := testkit.Dial(t, addr)
	io.WriteString(c, req)
	br := bufio.NewReader(c)
	resp := testkit.ReadResponse(t, br, "GET")
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d", resp.StatusCode, status)
	}
	if !resp.Close {
		t.Fatal("error response does not say Connection: close")
	}
	testkit.Body(t, resp)
	expectClosed(t, br)
}

// TestDetachWithoutRequestKeepsScalars: after DetachWithoutRequest the request's
// bytes are gone, but its scalar fields still drive the connection: pipelined
// HTTP/1.1 requests answered later stay in order, and an HTTP/1.0 request (no
// keep-alive) closes the connection after its response.
func TestDetachWithoutRequestKeepsScalars(t *testing.T) {
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		path := string(c.Request().Path)
		c.DetachWithoutRequest()
		r := c.Request()
		if r.Method != nil || r.Target != nil || r.Path != nil || r.Host != nil || r.Headers != nil {
			c.Error(500, "request bytes kept")
			return
		}
		go func() {
			c.Post(func() { c.Respond(200, "text/plain", []byte(path)) })
		}()
	}), nil)
	c := testkit.Dial(t, s.Addr())
	var buf bytes.Buffer
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&buf, "GET /a%d HTTP/1.1\r\nHost: x\r\nX-Pad: %d\r\n\r\n", i, i)
	}
	buf.WriteString("GET /last HTTP/1.0\r\n\r\n")
	c.Write(buf.Bytes())
	br := bufio.NewReader(c)
	for i := 0; i < 10; i++ {
		if got := testkit.Body(t, testkit.ReadResponse(t, br, "GET")); got != fmt.Sprintf("/a%d", i) {
			t.Fatalf("response %d: %q", i, got)
		}
	}
	if got := testkit.Body(t, testkit.ReadResponse(t, br, "GET")); got != "/last" {
		t.Fatalf("HTTP/1.0 response: %q", got)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the HTTP/1.0 response: %d bytes, %v; want the connection closed", n, err)
	}
}
