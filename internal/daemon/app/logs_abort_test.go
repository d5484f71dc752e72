package app

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gale-server/gale/server/servertest"
)

// TestAccessLogAbortedDownload downloads a 64 MiB file twice on each engine: once
// whole, once reading 256 KiB and resetting the connection. The whole one logs every
// byte; the aborted one logs at least what the client read and well short of the
// file (the kernel's buffers hold a few MiB at most), as nginx's $body_bytes_sent.
func TestAccessLogAbortedDownload(t *testing.T) { onLinuxEngines(t, testAbortedDownload) }

// onLinuxEngines runs f as a subtest on epoll and on io_uring (skipped where
// io_uring is not available).
func onLinuxEngines(t *testing.T, f func(t *testing.T, eng string)) { servertest.OnEngines(t, f) }

func testAbortedDownload(t *testing.T, eng string) {
	dir := t.TempDir()
	const size = 64 << 20
	f, err := os.Create(filepath.Join(dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	logPath := filepath.Join(t.TempDir(), "access.log")
	a, addr := runApp(t, `
engine: `+eng+`
workers: 1
servers:
  - name: web
    listen: ["127.0.0.1:0"]
    access_log: { path: `+logPath+`, format: json }
    routes:
      - static: { root: `+dir+` }
`)
	if b := a.srv.Engine().Backend(); b != eng {
		// The portable engine's writer goroutines hand bytes to the kernel on their
		// own schedule; the figure is asserted on the Linux engines.
		shutdownNow(t, a)
		t.Skipf("engine %q runs as %q", eng, b)
	}
	get := func(limit int64) int64 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, io.LimitReader(c, limit))
		if err != nil {
			t.Fatal(err)
		}
		if limit < size {
			c.(*net.TCPConn).SetLinger(0) // reset: the rest is never sent
		}
		return n
	}
	if n := get(size + 4096); n <= size {
		t.Fatalf("whole download read %d bytes", n)
	}
	read := get(256 << 10)
	// Shutting down flushes the log; the aborted response is logged when the server
	// sees the reset, or when the shutdown closes its connection: both before that.
	shutdownNow(t, a)
	lines := readLines(t, logPath)
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines, got %d: %q", len(lines), lines)
	}
	var whole, cut struct {
		Status int   `json:"status"`
		Bytes  int64 `json:"bytes"`
	}
	json.Unmarshal([]byte(lines[0]), &whole)
	json.Unmarshal([]byte(lines[1]), &cut)
	if whole.Status != 200 || whole.Bytes != size {
		t.Errorf("whole download logged %s", lines[0])
	}
	t.Logf("client read %d bytes; logged %d of %d, %s", read, cut.Bytes, whole.Bytes, lines[1])
	if cut.Status != 200 || cut.Bytes < read-1024 || cut.Bytes > size/2 {
		t.Errorf("aborted download (client read %d bytes) logged %s", read, lines[1])
	}
}

// TestAccessLogAbortedH2Download cancels an HTTP/2 download of a 64 MiB file after
// 256 KiB (RST_STREAM CANCEL): its line counts what reached the stream, at most the
// client's windows ahead of what it read, not the whole file.
func TestAccessLogAbortedH2Download(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 20
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "big.bin"), size); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "access.log")
	a, addr := runApp(t, `
workers: 1
servers:
  - name: web
    listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    access_log: { path: `+logPath+`, format: json }
    routes:
      - static: { root: `+dir+` }
`)
	c := h2c(t)
	resp, err := c.Get("http://" + addr + "/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("got %s, want HTTP/2", resp.Proto)
	}
	read, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // RST_STREAM CANCEL
	c.CloseIdleConnections()
	shutdownNow(t, a)
	lines := readLines(t, logPath)
	if len(lines) != 1 {
		t.Fatalf("want 1 log line, got %q", lines)
	}
	var e struct {
		Status int   `json:"status"`
		Bytes  int64 `json:"bytes"`
		Proto  string
	}
	json.Unmarshal([]byte(lines[0]), &e)
	t.Logf("client read %d bytes; logged %s", read, lines[0])
	if e.Proto != "h2" || e.Status != 200 || e.Bytes < read || e.Bytes > size/2 {
		t.Errorf("cancelled h2 download (client read %d bytes) logged %s", read, lines[0])
	}
}
