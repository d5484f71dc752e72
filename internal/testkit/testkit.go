// Package testkit holds the socket helpers that gale's tests share: waiting on a
// condition with a deadline, dialling a test server with a deadline and cleanup,
// reading raw HTTP/1.1 responses, running curl, an h2c client and raw HTTP/2 frames. It is imported by
// tests only.
package testkit

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// WaitTimeout is how long WaitFor waits before it fails the test.
const WaitTimeout = 10 * time.Second

// WaitFor polls cond every few milliseconds until it holds, and fails the test
// with "timed out waiting for what" after WaitTimeout.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(WaitTimeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Dial connects to addr over TCP, sets a 20-second deadline on the connection and
// closes it when the test ends; it fails the test if the connection is refused.
func Dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// ReadResponse reads one HTTP/1.1 response to a request with the given method
// from br, failing the test when it is malformed.
func ReadResponse(t testing.TB, br *bufio.Reader, method string) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return resp
}

// Body reads and closes a response body, failing the test on a read error.
func Body(t testing.TB, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

// Curl runs curl -sS with args and returns the response head (as written by -D)
// and the body. It fails the test when curl is missing (scripts/test.sh installs
// it) or exits non-zero.
func Curl(t testing.TB, args ...string) (head, body string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed (scripts/test.sh installs it)")
	}
	dir := t.TempDir()
	hf, bf := filepath.Join(dir, "head"), filepath.Join(dir, "body")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := append([]string{"-sS", "--max-time", "20", "-D", hf, "-o", bf}, args...)
	out, err := exec.CommandContext(ctx, "curl", all...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	h, _ := os.ReadFile(hf)
	b, _ := os.ReadFile(bf)
	return string(h), string(b)
}

// HeadField returns the value of the named field in a raw response head, or "".
func HeadField(head, name string) string {
	for l := range strings.SplitSeq(head, "\r\n") {
		if n, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(n, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// StatusOf returns the status code of a raw response head's last status line
// ("200"), or "" when there is none.
func StatusOf(head string) string {
	blocks := strings.Split(strings.TrimRight(head, "\r\n"), "\r\n\r\n")
	line, _, _ := strings.Cut(blocks[len(blocks)-1], "\r\n")
	f := strings.Fields(line)
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// Pipelined is the loop of a pipelined request benchmark: it resets the
// timer, then writes req batch times at once and reads batch responses of
// respLen bytes each until b.N requests have been answered.
func Pipelined(b *testing.B, c net.Conn, req string, respLen, batch int) {
	out := []byte(strings.Repeat(req, batch))
	in := make([]byte, respLen*batch)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		if _, err := c.Write(out); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, in); err != nil {
			b.Fatal(err)
		}
	}
}

// Serve runs a TCP server on 127.0.0.1:0 that calls f on its own goroutine for each
// accepted connection, with a 60-second deadline, and closes the connection when f
// returns. The listener closes when the test ends. It returns the bound address.
func Serve(t testing.TB, f func(c *net.TCPConn)) string {
	t.Helper()
	return ServeOn(t, "127.0.0.1:0", f).Addr().String()
}

// ServeOn is Serve on addr; it returns the listener, which the caller may close
// early (to stop the server, then start another on the same address).
func ServeOn(t testing.TB, addr string, f func(c *net.TCPConn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				f(c.(*net.TCPConn))
			}()
		}
	}()
	return ln
}

// HAProxy runs haproxy in the foreground with the configuration cfg and waits
// until addr (one of its bind addresses) accepts connections; it is killed when
// the test ends. The test is skipped when haproxy is not installed
// (scripts/test.sh installs it).
func HAProxy(t testing.TB, addr, cfg string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/haproxy"); err != nil {
			t.Skip("haproxy is not installed (scripts/test.sh installs it)")
		}
		bin = "/usr/sbin/haproxy"
	}
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", file)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	WaitFor(t, "haproxy to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// FreePort returns a loopback address on which nothing listens now (for a peer
// process that must be told its port).
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// H2CClient returns Go's HTTP/2 client (net/http's bundled x/net/http2) speaking h2c
// by prior knowledge, with a 30 s timeout; its idle connections close at cleanup.
func H2CClient(t testing.TB) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// H2Open dials addr (as Dial does), sends the HTTP/2 client preface and an empty
// SETTINGS frame, and returns the connection with a Framer that reads and writes
// it: for tests that speak raw frames on one known connection.
func H2Open(t testing.TB, addr string) (*net.TCPConn, *http2.Framer) {
	t.Helper()
	c := Dial(t, addr)
	fr := http2.NewFramer(c, c)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

// H2Get writes a GET of path (authority "x", scheme http) as stream id, with
// END_STREAM; extra holds more header fields as name, value pairs.
func H2Get(fr *http2.Framer, stream uint32, path string, extra ...string) error {
	return H2Request(fr, stream, "GET", path, extra...)
}

// H2Request is H2Get with another method.
func H2Request(fr *http2.Framer, stream uint32, method, path string, extra ...string) error {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	fields := append([]string{":method", method, ":scheme", "http", ":path", path, ":authority", "x"}, extra...)
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
}
