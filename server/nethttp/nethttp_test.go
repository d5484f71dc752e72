package nethttp

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
	"github.com/go-chi/chi/v5"
)

// startServer runs a gale server on 127.0.0.1 with h as its handler; mod may
// change the options. The server is shut down when the test ends.
func startServer(t testing.TB, h server.Handler, mod func(*server.Options)) *server.Server {
	t.Helper()
	opts := server.Options{Handler: h, Workers: 2}
	if mod != nil {
		mod(&opts)
	}
	s, err := server.New(opts)
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

// shutdownAtCleanup shuts s down when the test ends.
func shutdownAtCleanup(t testing.TB, s *server.Server) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
}

func startNetHTTP(t *testing.T, h http.Handler) *server.Server {
	t.Helper()
	p := server.NewPool(16, 64)
	t.Cleanup(p.Close)
	return startServer(t, Adapt(h, p), nil)
}

// TestChiRouter runs an unmodified chi router through the adapter.
func TestChiRouter(t *testing.T) {
	r := chi.NewRouter()
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"q":%q}`, chi.URLParam(r, "id"), r.URL.Query().Get("q"))
	})
	r.Post("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	})
	s := startNetHTTP(t, r)
	resp, err := http.Get("http://" + s.Addr() + "/users/42?q=x")
	if err != nil {
		t.Fatal(err)
	}
	if got := testkit.Body(t, resp); got != `{"id":"42","q":"x"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("chi GET: %q %v", got, resp.Header)
	}
	resp, err = http.Get("http://" + s.Addr() + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 404 {
		t.Fatalf("chi 404: %d", resp.StatusCode)
	}
	testkit.Body(t, resp)
	big := strings.Repeat("0123456789", 300000) // 3 MB, above the body pipe's window
	resp, err = http.Post("http://"+s.Addr()+"/echo", "text/plain", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	if got := testkit.Body(t, resp); sha256.Sum256([]byte(got)) != sha256.Sum256([]byte(big)) {
		t.Fatalf("echo of %d bytes came back as %d bytes", len(big), len(got))
	}
}

func TestNetHTTPFlushStreams(t *testing.T) {
	release := make(chan struct{})
	s := startNetHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second\n")
	}))
	resp, err := http.Get("http://" + s.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("flushed line: %q %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "second\n" {
		t.Fatalf("rest %q", rest)
	}
}

func TestNetHTTPContextCanceledOnClientGone(t *testing.T) {
	canceled := make(chan struct{})
	started := make(chan struct{})
	s := startNetHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(10 * time.Second):
		}
	}))
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	c.Close()
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("request context not canceled when the client went away")
	}
}

func TestNetHTTPTrailers(t *testing.T) {
	s := startNetHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		io.WriteString(w, "payload")
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}))
	resp, err := http.Get("http://" + s.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := testkit.Body(t, resp); got != "payload" {
		t.Fatalf("body %q", got)
	}
	if resp.Trailer.Get("X-Checksum") != "abc" || resp.Trailer.Get("X-Late") != "late" {
		t.Fatalf("trailers %v", resp.Trailer)
	}
}

// hijacking returns a handler that hijacks the connection and runs f with it,
// closing the connection afterwards.
func hijacking(t *testing.T, f func(conn net.Conn, brw *bufio.ReadWriter)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		f(conn, brw)
	})
}

func TestNetHTTPHijack(t *testing.T) {
	s := startNetHTTP(t, hijacking(t, func(conn net.Conn, brw *bufio.ReadWriter) {
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := brw.ReadString('\n')
		if err != nil {
			t.Error(err)
			return
		}
		brw.WriteString("echo: " + line)
		brw.Flush()
	}))
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp := testkit.ReadResponse(t, br, "GET")
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	io.WriteString(c, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: ping\n" {
		t.Fatalf("after hijack: %q %v", line, err)
	}
}

func TestNetHTTPPanicGives500(t *testing.T) {
	s := startNetHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	}))
	resp, err := http.Get("http://" + s.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	testkit.Body(t, resp)
	_ = context.Background
}

// TestNetHTTPBodyErrorFreesWorker sends more failing request bodies than the pool
// has workers to a handler that reads its body (a malformed chunk, a client that
// goes away mid-body, a body that stops arriving): every handler's Read must return
// an error so that the worker is free again, and a good request after them is
// served.
func TestNetHTTPBodyErrorFreesWorker(t *testing.T) {
	const workers = 4
	readErrs := make(chan error, 16)
	p := server.NewPool(workers, 1)
	t.Cleanup(func() {
		if !t.Failed() { // on failure the workers may be stuck: do not wait for them
			p.Close()
		}
	})
	s := startServer(t, Adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/bad" {
			readErrs <- err
		}
		io.WriteString(w, "ok")
	}), p), func(o *server.Options) {
		o.BodyTimeout = 300 * time.Millisecond
		o.Limits = http1.DefaultLimits()
		o.Limits.MaxBodyBytes = 8 // the head's "hello" fits, 5 more bytes do not
	})
	const head = "POST /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
	cases := []struct {
		name   string
		send   string
		hangUp bool // close the connection after sending
		status int  // expected answer; 0: none (the client hung up)
	}{
		{"malformed chunk", head + "zz\r\n", false, 400},
		{"body over the limit", head + "5\r\nworld\r\n", false, 413},
		{"client gone mid-body", head, true, 0},
		{"body timeout", head, false, 408},
	}
	for _, tc := range cases {
		for i := 0; i < workers+2; i++ {
			c := testkit.Dial(t, s.Addr())
			io.WriteString(c, tc.send)
			if tc.hangUp {
				c.Close()
			} else if resp := testkit.ReadResponse(t, bufio.NewReader(c), "POST"); resp.StatusCode != tc.status {
				t.Fatalf("%s %d: status %d, want %d", tc.name, i, resp.StatusCode, tc.status)
			}
			select {
			case err := <-readErrs:
				if err == nil {
					t.Fatalf("%s %d: the handler's Read returned no error", tc.name, i)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s %d: the handler's Read is still blocked", tc.name, i)
			}
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + s.Addr() + "/good")
	if err != nil {
		t.Fatalf("good request after failed bodies: %v", err)
	}
	if got := testkit.Body(t, resp); resp.StatusCode != 200 || got != "ok" {
		t.Fatalf("good request: %d %q", resp.StatusCode, got)
	}
}

// bodylessHandler answers each path in a way that must never put body bytes on the
// wire for HEAD, 204 or 304.
var bodylessHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/flush": // unknown length, flushed
		io.WriteString(w, "hello")
		w.(http.Flusher).Flush()
		io.WriteString(w, "world")
	case "/flush-empty":
		w.(http.Flusher).Flush()
	case "/big": // longer than the response buffer, never flushed
		io.WriteString(w, strings.Repeat("b", 3*responseBufSize))
	case "/length":
		w.Header().Set("Content-Length", "5")
		w.(http.Flusher).Flush()
		io.WriteString(w, "hello")
	case "/204", "/304":
		w.WriteHeader(map[string]int{"/204": 204, "/304": 304}[r.URL.Path])
		io.WriteString(w, "not allowed")
		w.(http.Flusher).Flush()
		io.WriteString(w, "still not allowed")
	default:
		io.WriteString(w, "next")
	}
})

var bodylessCases = []struct{ method, path string }{
	{"HEAD", "/flush"}, {"HEAD", "/flush-empty"}, {"HEAD", "/big"}, {"HEAD", "/length"},
	{"HEAD", "/204"}, {"HEAD", "/304"}, {"GET", "/204"}, {"GET", "/304"},
}

// TestNetHTTPBodylessResponsesKeepConnection checks with Go's client that a HEAD,
// 204 or 304 response leaves the connection usable: the next request reuses it.
func TestNetHTTPBodylessResponsesKeepConnection(t *testing.T) {
	s := startNetHTTP(t, bodylessHandler)
	for _, tc := range bodylessCases {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			do := func(method, path string) (*http.Response, bool) {
				var reused bool
				trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, "http://"+s.Addr()+path, nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				return resp, reused
			}
			resp, _ := do(tc.method, tc.path)
			if got := testkit.Body(t, resp); got != "" {
				t.Fatalf("%s %s: body %q", tc.method, tc.path, got)
			}
			resp, reused := do("GET", "/next")
			if got := testkit.Body(t, resp); got != "next" {
				t.Fatalf("next request: body %q", got)
			}
			if !reused {
				t.Fatalf("the connection was not reused after %s %s", tc.method, tc.path)
			}
		})
	}
}

// TestNetHTTPBodylessResponsesRawBytes pipelines a bodyless response and another
// request: the second response must follow the first head directly.
func TestNetHTTPBodylessResponsesRawBytes(t *testing.T) {
	s := startNetHTTP(t, bodylessHandler)
	for _, tc := range bodylessCases {
		c := testkit.Dial(t, s.Addr())
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n", tc.method, tc.path)
		br := bufio.NewReader(c)
		testkit.ReadResponse(t, br, tc.method).Body.Close()
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200 ") {
			t.Fatalf("%s %s: after the head came %q (%v), not the next response", tc.method, tc.path, line, err)
		}
		c.Close()
	}
}

// TestNetHTTPHijackEarlyBytesAndBackpressure sends bytes together with the request
// head and then more than every pipe window in both directions: the hijacked
// connection must see the early bytes first and echo everything in order.
func TestNetHTTPHijackEarlyBytesAndBackpressure(t *testing.T) {
	const size = 3 << 20
	s := startNetHTTP(t, hijacking(t, func(conn net.Conn, brw *bufio.ReadWriter) {
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.Copy(conn, io.LimitReader(brw, int64(len("early\n")+size))); err != nil {
			t.Error(err)
		}
	}))
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\nearly\n")
	payload := []byte(strings.Repeat("0123456789abcdef", size/16))
	go c.Write(payload)
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("early\n"), payload...)
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("echoed %d bytes, want %d (or they differ)", len(got), len(want))
	}
}

// TestNetHTTPHijackReadDeadline checks that a read deadline on a hijacked
// connection ends a Read that has nothing to return.
func TestNetHTTPHijackReadDeadline(t *testing.T) {
	errs := make(chan error, 1)
	s := startNetHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			errs <- err
			return
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err = conn.Read(make([]byte, 1))
		errs <- err
	}))
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-errs:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read after the deadline: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after its deadline")
	}
}

// TestNetHTTPWritesFailAfterServerEndedResponse lets the adapter's response timeout answer
// 504 for a slow handler: the handler's later writes must fail instead of going to
// a request the server has finished.
func TestNetHTTPWritesFailAfterServerEndedResponse(t *testing.T) {
	answered := make(chan struct{})
	writeErr := make(chan error, 1)
	p := server.NewPool(4, 0)
	t.Cleanup(p.Close)
	s := startServer(t, AdaptOptions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-answered
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			if _, err := io.WriteString(w, "late"); err != nil {
				writeErr <- err
				return
			}
			w.(http.Flusher).Flush()
		}
		writeErr <- nil
	}), p, Options{ResponseTimeout: 100 * time.Millisecond}), nil)
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp := testkit.ReadResponse(t, bufio.NewReader(c), "GET"); resp.StatusCode != 504 {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	close(answered)
	if err := <-writeErr; err == nil {
		t.Fatal("every write after the 504 succeeded")
	}
}

// TestNetHTTPRequestTrailers checks that trailers after a chunked request body
// reach http.Request.Trailer once the body has been read to EOF.
func TestNetHTTPRequestTrailers(t *testing.T) {
	s := startNetHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%s|%s", b, r.Trailer.Get("X-Sum"))
	}))
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n")
	resp := testkit.ReadResponse(t, bufio.NewReader(c), "POST")
	if got := testkit.Body(t, resp); got != "hello|42" {
		t.Fatalf("body and trailer %q, want %q", got, "hello|42")
	}
}
