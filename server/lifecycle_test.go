package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	c := dial(t, s.Addr())
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp := readResponse(t, br, "GET")
	if resp.ContentLength != size {
		t.Fatalf("Content-Length %d", resp.ContentLength)
	}
	first := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	done := shutdownAsync(t, s, 20*time.Second)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(first)+len(rest) != size {
		t.Fatalf("download cut at shutdown: %d of %d bytes, %v", len(first)+len(rest), size, err)
	}
	readSum(t, io.MultiReader(bytes.NewReader(first), bytes.NewReader(rest)), size)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	expectClosed(t, br)
}

// TestShutdownClosesIdleAtOnce: a keep-alive connection with nothing queued is closed
// when shutdown starts; Shutdown does not wait for its idle timeout or the grace.
func TestShutdownClosesIdleAtOnce(t *testing.T) {
	s := newServer(t, echoPath, func(o *Options) { o.IdleTimeout = time.Hour })
	c := dial(t, s.Addr())
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	body(t, readResponse(t, br, "GET"))
	done := shutdownAsync(t, s, time.Hour)
	expectClosed(t, br)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
