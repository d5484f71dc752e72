//go:build linux

package main

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/daemon/supervisor"
)

// shutdownConfig serves dir as static files with a long shutdown grace and a short
// idle timeout (shorter than the downloads, which must survive it).
func shutdownConfig(dir string) string {
	return fmt.Sprintf(`workers: 1
log: { format: json }
timeouts: { idle: 2s, write: 5s, shutdown_grace: 1m }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: / }
        static: { root: %q }
`, dir)
}

// writeRandomFile writes size pseudo-random bytes to path and returns their SHA-256.
func writeRandomFile(t *testing.T, path string, size int64) []byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{7})
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rng, size)); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

// TestHeavySIGTERMFinishesDownload: a 100 MiB download throttled to 5 MiB/s (20 s,
// ten times the idle timeout) is under way when gale gets SIGTERM; it completes byte
// for byte within the shutdown grace, and gale then exits cleanly.
func TestHeavySIGTERMFinishesDownload(t *testing.T) {
	if os.Getenv("GALE_HEAVY") != "1" {
		t.Skip("moves 100 MiB through a throttled client; GALE_HEAVY=1 runs it")
	}
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "www")
	os.Mkdir(root, 0o755)
	const size = 100 << 20
	want := writeRandomFile(t, filepath.Join(root, "big.bin"), size)
	cfg := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfg, shutdownConfig(root))
	g := startGale(t, bin, dir, "serve", "-c", cfg)

	c, err := net.Dial("tcp", g.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	fmt.Fprintf(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("response: %v %v", resp, err)
	}
	h := sha256.New()
	const rate = 5 << 20
	start := time.Now()
	buf := make([]byte, 32<<10)
	var got int64
	signaled := false
	for got < size {
		n, err := resp.Body.Read(buf)
		h.Write(buf[:n])
		got += int64(n)
		if err != nil && got < size {
			t.Fatalf("download cut after %d of %d bytes (%v, SIGTERM sent: %v): %v", got, size, time.Since(start), signaled, err)
		}
		if !signaled && got >= 10<<20 {
			g.signal(syscall.SIGTERM)
			signaled = true
		}
		if ahead := time.Duration(got*int64(time.Second)/rate) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	if string(h.Sum(nil)) != string(want) {
		t.Fatal("downloaded bytes differ from the file")
	}
	if code := g.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, g.log())
	}
}

// TestSIGTERMClosesIdleAtOnce: a keep-alive connection with nothing queued does not
// hold up a stopping gale: it is closed when shutdown starts, and gale exits long
// before its one-minute grace.
func TestSIGTERMClosesIdleAtOnce(t *testing.T) {
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o644)
	cfg := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfg, shutdownConfig(dir))
	g := startGale(t, bin, dir, "serve", "-c", cfg)
	rc := dialRaw(t, g.addr())
	if body, _ := rc.roundTrip(t, "/a.txt"); body != "hello" {
		t.Fatalf("body %q", body)
	}
	g.signal(syscall.SIGTERM)
	rc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := rc.br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection at shutdown: read %d, %v; want EOF", n, err)
	}
	if code := g.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, g.log())
	}
}

// startDownloadGale runs gale with the given number of worker processes,
// serving a pseudo-random /big.bin of size bytes with shutdownConfig, and
// waits until every process serves. It returns the process, the
// configuration file and the SHA-256 of the file.
func startDownloadGale(t *testing.T, processes int, size int64) (g *galeProc, cfg string, want []byte) {
	t.Helper()
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "www")
	os.Mkdir(root, 0o755)
	want = writeRandomFile(t, filepath.Join(root, "big.bin"), size)
	cfg = filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfg, fmt.Sprintf("processes: %d\n", processes)+shutdownConfig(root))
	g = startGale(t, bin, dir, "serve", "-c", cfg)
	if processes > 1 {
		g.waitLog("listening", 1+processes) // the parent's line, then each worker's
	}
	return g, cfg, want
}

// startDownload requests /big.bin (size bytes) on a connection with a small
// receive buffer and reads its first MiB, so that most of the response is
// still to be sent; it returns the rest of the body and the hash of what
// was read.
func startDownload(t *testing.T, addr string, size int64) (io.Reader, hash.Hash) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	c.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("response: %v %v", resp, err)
	}
	h := sha256.New()
	if _, err := io.CopyN(h, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	return resp.Body, h
}

// finishDownload reads the rest of a download started by startDownload and
// fails the test unless it completes with the file's bytes.
func finishDownload(t *testing.T, body io.Reader, h hash.Hash, size int64, want []byte, g *galeProc) {
	t.Helper()
	if n, err := io.Copy(h, body); err != nil || n != size-1<<20 {
		t.Fatalf("download cut: %d more bytes, %v; want %d:\n%s", n, err, size-1<<20, g.log())
	}
	if string(h.Sum(nil)) != string(want) {
		t.Fatal("downloaded bytes differ from the file")
	}
}

// TestSIGQUITStopsGracefully: SIGQUIT, nginx's graceful stop and the stop
// signal of its container images, stops gale the way SIGTERM does, with one
// process and with two: a download under way when the signal arrives
// completes byte for byte, gale exits 0 and removes its stats segment. Go's
// default for SIGQUIT is a goroutine dump and exit status 2.
func TestSIGQUITStopsGracefully(t *testing.T) {
	for _, processes := range []int{1, 2} {
		t.Run(fmt.Sprintf("processes=%d", processes), func(t *testing.T) {
			const size = 32 << 20 // more than the socket buffers hold
			g, cfg, want := startDownloadGale(t, processes, size)
			body, h := startDownload(t, g.addr(), size)
			g.signal(syscall.SIGQUIT)
			g.waitLog("shutting down", processes)
			finishDownload(t, body, h, size, want, g)
			if code := g.wait(30 * time.Second); code != 0 {
				t.Fatalf("exit status %d after SIGQUIT:\n%s", code, g.log())
			}
			if _, err := os.Stat(supervisor.StatsPathForFile(cfg)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stats segment after a graceful stop: %v", err)
			}
		})
	}
}
