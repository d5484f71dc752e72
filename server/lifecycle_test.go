package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// patternFile writes size pattern bytes to a temporary file and returns it open.
func patternFile(t testing.TB, size int64) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "pattern"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	buf := make([]byte, patternBlock)
	for i := 0; int64(i)*patternBlock < size; i++ {
		fillPattern(buf, i)
		n := min(int64(len(buf)), size-int64(i)*patternBlock)
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// fileHandler sends f (of size bytes) with SendFile: the body is a file segment,
// not queued memory.
func fileHandler(f *os.File, size int64) Handler {
	return HandlerFunc(func(c *Ctx) {
		c.SetContentLength(size)
		c.SendFile(int(f.Fd()), 0, size, nil)
		c.End()
	})
}

// newServer starts a server without the automatic shutdown of startServer, for
// tests that shut it down themselves.
func newServer(t testing.TB, h Handler, mod func(*Options)) *Server {
	t.Helper()
	opts := Options{Handler: h, Workers: 1}
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
	return s
}

// shutdownAsync starts s.Shutdown with grace and waits until the server stopped
// listening, which the engine does in the same step as telling every connection
// (OnShutdown). The channel reports Shutdown's result.
func shutdownAsync(t testing.TB, s *Server, grace time.Duration) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			return done
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still accepting after Shutdown started")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readSum reads a response body of size bytes from br and checks it is the pattern.
func readSum(t testing.TB, br io.Reader, size int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(br, size))
	if err != nil || n != size {
		t.Fatalf("body: %d of %d bytes, %v", n, size, err)
	}
	if got, want := h.Sum(nil), patternSum(size); string(got) != string(want) {
		t.Fatal("body differs from the file")
	}
}

// TestShutdownFinishesQueuedResponse: a download whose response is completely queued
// (the handler is done, the file is still going out) is in flight, not idle, at
// shutdown: it completes within the grace period, and Shutdown returns once it has.
func TestShutdownFinishesQueuedResponse(t *testing.T) {
	const size = 16 << 20
	f := patternFile(t, size)
	s := newServer(t, fileHandler(f, size), nil)
	type download struct {
		br    *bufio.Reader
		body  io.Reader
		first []byte
	}
	var downloads []download
	// One download sent with sendfile, one through a FilePump (as over TLS).
	for _, addr := range []string{s.Addr(), listenNoSendfile(t, s, fileHandler(f, size))} {
		c := testkit.Dial(t, addr)
		c.SetReadBuffer(64 << 10)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp := testkit.ReadResponse(t, br, "GET")
		if resp.ContentLength != size {
			t.Fatalf("Content-Length %d", resp.ContentLength)
		}
		first := make([]byte, 1<<20)
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatal(err)
		}
		downloads = append(downloads, download{br, resp.Body, first})
	}
	done := shutdownAsync(t, s, 20*time.Second)
	for i, d := range downloads {
		rest, err := io.ReadAll(d.body)
		if err != nil || len(d.first)+len(rest) != size {
			t.Fatalf("download %d cut at shutdown: %d of %d bytes, %v", i, len(d.first)+len(rest), size, err)
		}
		readSum(t, io.MultiReader(bytes.NewReader(d.first), bytes.NewReader(rest)), size)
		expectClosed(t, d.br)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownClosesIdleAtOnce: a keep-alive connection with nothing queued is closed
// when shutdown starts; Shutdown does not wait for its idle timeout or the grace.
func TestShutdownClosesIdleAtOnce(t *testing.T) {
	s := newServer(t, echoPath, func(o *Options) { o.IdleTimeout = time.Hour })
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	testkit.Body(t, testkit.ReadResponse(t, br, "GET"))
	done := shutdownAsync(t, s, time.Hour)
	expectClosed(t, br)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestPipelinedOutputBounded: a client that pipelines thousands of requests and does
// not read makes the server stop parsing once the connection's queued output (file
// segments included) is above the high-water mark, instead of answering everything
// it has read into memory; reading then yields every response, in order.
func TestPipelinedOutputBounded(t *testing.T) {
	const n, fileSize = 1500, 1 << 10
	f := patternFile(t, fileSize)
	var maxQueued atomic.Int64
	serveFile := fileHandler(f, fileSize)
	h := HandlerFunc(func(c *Ctx) {
		q := c.Conn().QueuedBytes()
		if c.cn.pumped {
			q = int64(c.cn.ls.pumps[c.cn].Buffered())
		}
		if q > maxQueued.Load() {
			maxQueued.Store(q) // one loop serves the connection: no lost update
		}
		if string(c.Request().Path) == "/file" {
			serveFile.ServeGale(c)
			return
		}
		c.Respond(200, "text/plain", c.Request().Path)
	})
	s := startServer(t, h, func(o *Options) { o.Workers = 1 })
	for _, addr := range []string{s.Addr(), listenNoSendfile(t, s, h)} {
		maxQueued.Store(0)
		pipelineUnread(t, s, addr, n, fileSize, &maxQueued)
	}
}

// pipelineUnread pipelines n requests on a new connection to addr without reading,
// then reads every response and checks that no request was parsed with more than the
// high-water mark of output queued (as the handler recorded in maxQueued).
func pipelineUnread(t *testing.T, s *Server, addr string, n, fileSize int, maxQueued *atomic.Int64) {
	t.Helper()
	in0 := s.Stats().BytesIn
	c := testkit.Dial(t, addr)
	c.SetReadBuffer(16 << 10)
	var reqs bytes.Buffer
	for i := 0; i < n; i++ {
		if i%10 == 0 {
			fmt.Fprintf(&reqs, "GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		} else {
			io.WriteString(&reqs, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
		}
	}
	wrote := make(chan error, 1)
	go func() { _, err := c.Write(reqs.Bytes()); wrote <- err }()
	// The server reads many requests (one read holds 32 KiB or more) before the
	// client reads anything.
	testkit.WaitFor(t, "the server to read requests", func() bool { return s.Stats().BytesIn-in0 >= uint64(min(reqs.Len(), 32<<10)) })
	br := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		resp := testkit.ReadResponse(t, br, "GET")
		got := testkit.Body(t, resp)
		if i%10 == 0 {
			if want := fmt.Sprintf("/r%d", i); got != want {
				t.Fatalf("response %d: %q, want %q", i, got, want)
			}
		} else if len(got) != fileSize {
			t.Fatalf("response %d: %d bytes", i, len(got))
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	hw := int64(s.Engine().HighWater())
	if m := maxQueued.Load(); m > hw {
		t.Fatalf("a request was parsed with %d bytes of output queued; high-water mark %d", m, hw)
	}
}

// throttledRead reads size bytes from r into a hash at about rate bytes per second,
// in 32 KiB reads, and checks them against want (patternSum(size)).
func throttledRead(t testing.TB, r io.Reader, size, rate int64, want []byte) {
	t.Helper()
	h := sha256.New()
	start := time.Now()
	buf := make([]byte, 32<<10)
	var got int64
	for got < size {
		n, err := r.Read(buf[:min(int64(len(buf)), size-got)])
		h.Write(buf[:n])
		got += int64(n)
		if err != nil && got < size {
			t.Fatalf("download cut after %d of %d bytes (%v): %v", got, size, time.Since(start), err)
		}
		if ahead := time.Duration(got*int64(time.Second)/rate) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	if string(h.Sum(nil)) != string(want) {
		t.Fatal("body differs from the file")
	}
}

// TestSlowDownloadOutlivesIdleTimeout: a keep-alive download that keeps making
// progress is not cut by the idle timeout (which starts only once the response is
// fully sent) nor by the write timeout (the longest wait for progress, not a
// deadline); after it the connection is reused, then closed when idle. ("Sent" is
// handed to the kernel: the idle timeout must exceed the time the client takes to
// read what the socket buffers hold, up to 4 MiB here.)
func TestSlowDownloadOutlivesIdleTimeout(t *testing.T) {
	size, rate := int64(24<<20), int64(8<<20) // 3 s
	if heavy(t) {
		size = 100 << 20 // 12.5 s each
	}
	f := patternFile(t, size)
	want := patternSum(size) // before the downloads: the idle timeout runs between them
	s := startServer(t, fileHandler(f, size), func(o *Options) {
		o.IdleTimeout = 2 * time.Second
		o.WriteTimeout = time.Second
	})
	for _, addr := range []string{s.Addr(), listenNoSendfile(t, s, fileHandler(f, size))} {
		c := testkit.Dial(t, addr)
		c.SetDeadline(time.Now().Add(60 * time.Second))
		c.SetReadBuffer(64 << 10)
		br := bufio.NewReader(c)
		for _, r := range []int64{rate, 1 << 40} { // throttled, then at full speed
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp := testkit.ReadResponse(t, br, "GET")
			if resp.ContentLength != size {
				t.Fatalf("Content-Length %d", resp.ContentLength)
			}
			throttledRead(t, resp.Body, size, r, want)
		}
		expectClosed(t, br) // the idle timeout after the second download
	}
	if n := s.Stats().Accepted; n != 2 {
		t.Fatalf("%d connections for two downloads on each of two listeners", n)
	}
}

// TestStalledClientsReleased: every response kind is bounded by the write timeout:
// clients that send a request and never read (keep-alive, Connection: close,
// HTTP/1.0 close-delimited) are closed once their output has made no progress for
// that long, and their descriptors are released.
func TestStalledClientsReleased(t *testing.T) {
	const size = 8 << 20
	f := patternFile(t, size)
	serveFile := fileHandler(f, size)
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		switch string(c.Request().Path) {
		case "/stream": // unknown length: chunked, or close-delimited for HTTP/1.0
			c.WriteHeader(200)
			c.SendFile(int(f.Fd()), 0, size, nil)
			c.End()
		default:
			serveFile.ServeGale(c)
		}
	}), func(o *Options) { o.WriteTimeout = 300 * time.Millisecond })
	reqs := []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"GET /stream HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
	}
	clients := 40
	if heavy(t) {
		clients = 200
	}
	for i := 0; i < clients; i++ {
		c := testkit.Dial(t, s.Addr())
		c.SetReadBuffer(16 << 10)
		io.WriteString(c, reqs[i%len(reqs)])
	}
	testkit.WaitFor(t, "every client to be accepted", func() bool { return s.Stats().Accepted == uint64(clients) })
	testkit.WaitFor(t, "stalled connections to be closed", func() bool { return s.Stats().Active == 0 })
}
