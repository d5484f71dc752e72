package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBlockingHandler serves keep-alive requests with a Blocking handler whose
// worker answers at once or after sleeping (the loop yields before its wait, and
// a worker that blocks must still be answered through the ordinary wake-up), and
// checks that a full pool answers 503 at once.
func TestBlockingHandler(t *testing.T) {
	p := NewPool(1, 1)
	t.Cleanup(p.Close) // registered first: runs after the server has shut down
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll) // a failed check must not leave the worker held: Close waits for it
	var holding atomic.Int32
	h := Blocking(HandlerFunc(func(c *Ctx) {
		path := string(c.Request().Target)
		switch path {
		case "/sleep":
			time.Sleep(2 * time.Millisecond)
		case "/hold":
			holding.Add(1)
			<-release
		}
		c.Post(func() { c.Respond(200, "text/plain", []byte(path)) })
	}), p)
	s := startServer(t, h, nil)
	get := func(br *bufio.Reader, c net.Conn, path string) (int, string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; i < 50; i++ {
		for _, path := range []string{"/fast", "/sleep"} {
			if code, body := get(br, c, path); code != 200 || body != path {
				t.Fatalf("GET %s: %d %q", path, code, body)
			}
		}
	}
	// One worker held, one job queued: the third request finds the pool full. The
	// second /hold is sent only once the first has reached the worker, so that it
	// is the one in the queue.
	var held []net.Conn
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	for i := 0; i < 2; i++ {
		hc, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer hc.Close()
		hc.Write([]byte("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"))
		held = append(held, hc)
		if i == 0 {
			waitFor("the first /hold to reach the worker", func() bool { return holding.Load() == 1 })
		}
	}
	waitFor("the second /hold to be queued", func() bool { return len(p.jobs) == 1 })
	if code, _ := get(br, c, "/fast"); code != 503 {
		t.Fatalf("full pool: status %d, want 503", code)
	}
	releaseAll()
	for _, hc := range held {
		hc.SetDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(hc), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("held request: %v %v", resp, err)
		}
	}
}

// TestClosedPoolRefuses: a pool closed while its server still runs refuses new
// work, so the request gets 503 and the server keeps serving, instead of the
// loop panicking on a send to the closed queue and taking the process down.
func TestClosedPoolRefuses(t *testing.T) {
	p := NewPool(1, 1)
	s := startServer(t, Blocking(HandlerFunc(func(c *Ctx) {
		c.Post(func() { c.Respond(200, "text/plain", []byte("ok")) })
	}), p), nil)
	p.Close()
	for i := 0; i < 2; i++ {
		resp, err := http.Get("http://" + s.Addr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("request %d after Close: status %d, want 503", i, resp.StatusCode)
		}
	}
	if p.TrySubmit(func() {}) {
		t.Fatal("TrySubmit after Close accepted work")
	}
}
