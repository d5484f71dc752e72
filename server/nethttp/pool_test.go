package nethttp

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
)

// TestNetHTTPPoolFullGives503: with the one worker busy and the one queue slot
// taken, the next request is answered 503 at once; once the worker is released the
// held and the queued requests are answered and the pool serves again.
func TestNetHTTPPoolFullGives503(t *testing.T) {
	p := server.NewPool(1, 1)
	release := make(chan struct{})
	t.Cleanup(p.Close)
	holding := make(chan struct{}, 1)
	s := startServer(t, Adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			holding <- struct{}{}
			<-release
		}
		io.WriteString(w, r.URL.Path)
	}), p), nil)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	send := func(path string) (net.Conn, *bufio.Reader) {
		c := testkit.Dial(t, s.Addr())
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		return c, bufio.NewReader(c)
	}
	_, holdR := send("/hold")
	waitDone(t, holding, "worker busy")
	_, queuedR := send("/queued") // takes the queue slot
	// Only once /queued is in the queue is the pool full: a /full sent earlier (on
	// the other loop) could take the slot itself and wait instead of being refused.
	for deadline := time.Now().Add(5 * time.Second); p.Queued() < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("/queued never reached the pool's queue")
		}
	}
	c, br := send("/full")
	resp := testkit.ReadResponse(t, br, "GET")
	if body := testkit.Body(t, resp); resp.StatusCode != 503 {
		t.Fatalf("with the pool full: %d %q, want 503", resp.StatusCode, body)
	}
	c.Close()
	close(release)
	for _, x := range []struct {
		br   *bufio.Reader
		want string
	}{{holdR, "/hold"}, {queuedR, "/queued"}} {
		if got := testkit.Body(t, testkit.ReadResponse(t, x.br, "GET")); got != x.want {
			t.Fatalf("got %q, want %q", got, x.want)
		}
	}
	_, br = send("/after")
	if got := testkit.Body(t, testkit.ReadResponse(t, br, "GET")); got != "/after" {
		t.Fatalf("after the pool drained: %q", got)
	}
}

// TestNetHTTPRequestBodyBackpressure: while the handler does not read, the server
// stops reading the request body (the client's writes stall with far less than the
// body sent); then the handler reads the whole body, byte-exact.
func TestNetHTTPRequestBodyBackpressure(t *testing.T) {
	const size = 64 << 20
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	want := sha256.Sum256(body)
	start := make(chan struct{})
	got := make(chan string, 1)
	s := startNetHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-start
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		got <- fmt.Sprintf("%d %v %x", n, err, h.Sum(nil))
		io.WriteString(w, "ok")
	}))
	c := testkit.Dial(t, s.Addr())
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	// Write until the socket stops taking bytes for 300 ms.
	sent := 0
	for sent < size {
		c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Write(body[sent:min(sent+64<<10, size)])
		sent += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if sent >= size/2 {
		t.Fatalf("the server took %d of %d body bytes while the handler read nothing", sent, size)
	}
	close(start)
	c.SetWriteDeadline(time.Time{})
	if _, err := c.Write(body[sent:]); err != nil {
		t.Fatal(err)
	}
	if g, w := <-got, fmt.Sprintf("%d <nil> %x", size, want); g != w {
		t.Fatalf("handler read %s, want %s", g, w)
	}
	if b := testkit.Body(t, testkit.ReadResponse(t, bufio.NewReader(c), "POST")); b != "ok" {
		t.Fatalf("response %q", b)
	}
}
