package l4

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
)

func TestEcho(t *testing.T) {
	px, addr := startProxy(t, Options{Upstreams: group(serve(t, echo))})
	c := dial(t, addr)
	r := bufio.NewReader(c)
	for i := range 50 {
		line := fmt.Sprintf("line %d\n", i)
		c.Write([]byte(line))
		got, err := r.ReadString('\n')
		if err != nil || got != line {
			t.Fatalf("echo %q, %v; want %q", got, err, line)
		}
	}
	c.CloseWrite()
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %q, %v", rest, err)
	}
	if s := px.Stats(); s.Spliced != 0 || s.Copied == 0 {
		t.Fatalf("an interactive exchange must stay on the copy path: %+v", s)
	}
	testkit.WaitFor(t, "the relay to end", func() bool { return px.Stats().Active == 0 })
}

// TestKeepAliveStaysCopying: a long interactive exchange (like HTTP keep-alive
// through the relay) moves far more than SpliceAfter in small messages and must
// stay on the copy path, which costs less per message.
func TestKeepAliveStaysCopying(t *testing.T) {
	px, addr := startProxy(t, Options{Upstreams: group(serve(t, echo)), SpliceAfter: 64 << 10})
	c := dial(t, addr)
	msg, buf := bytes.Repeat([]byte("q"), 1000), make([]byte, 1000)
	for i := range 300 { // 300 KB each way
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("round trip %d: %v", i, err)
		}
	}
	// The loop counts a relayed chunk after writing it, so the client may read the
	// last echo before the count of its bytes is visible.
	testkit.WaitFor(t, "600000 bytes counted as copied", func() bool { return px.Stats().Copied >= 600000 })
	if s := px.Stats(); s.Spliced != 0 || s.Copied != 600000 {
		t.Fatalf("stats %+v: want 600000 bytes copied, none spliced", s)
	}
}

func TestHalfCloseClientFirst(t *testing.T) {
	upstream := serve(t, func(c *net.TCPConn) {
		got, _ := io.ReadAll(c) // until the client's FIN arrives through the relay
		fmt.Fprintf(c, "got %d bytes", len(got))
	})
	_, addr := startProxy(t, Options{Upstreams: group(upstream)})
	c := dial(t, addr)
	c.Write(bytes.Repeat([]byte("x"), 1000))
	c.CloseWrite()
	reply, err := io.ReadAll(c)
	if err != nil || string(reply) != "got 1000 bytes" {
		t.Fatalf("reply %q, %v", reply, err)
	}
}

func TestHalfCloseUpstreamFirst(t *testing.T) {
	late := make(chan string, 1)
	upstream := serve(t, func(c *net.TCPConn) {
		c.Write([]byte("hello"))
		c.CloseWrite()
		got, _ := io.ReadAll(c)
		late <- string(got)
	})
	_, addr := startProxy(t, Options{Upstreams: group(upstream)})
	c := dial(t, addr)
	greeting, err := io.ReadAll(c) // the upstream's FIN passed on
	if err != nil || string(greeting) != "hello" {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	c.Write([]byte("after your FIN"))
	c.CloseWrite()
	if got := <-late; got != "after your FIN" {
		t.Fatalf("upstream read %q after its half-close", got)
	}
}

func TestResetPropagates(t *testing.T) {
	upstream := serve(t, func(c *net.TCPConn) {
		c.Read(make([]byte, 10))
		c.SetLinger(0)
	})
	_, addr := startProxy(t, Options{Upstreams: group(upstream)})
	c := dial(t, addr)
	c.Write([]byte("boom"))
	_, err := io.ReadAll(c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read %v, want ECONNRESET", err)
	}
}

func TestRefusedUpstreamNextServer(t *testing.T) {
	px, addr := startProxy(t, Options{Upstreams: group(closedPort(t), serve(t, echo), closedPort(t))})
	for i := range 3 { // every starting point of the round robin
		c := dial(t, addr)
		msg := fmt.Sprintf("try %d", i)
		c.Write([]byte(msg))
		c.CloseWrite()
		if got, err := io.ReadAll(c); err != nil || string(got) != msg {
			t.Fatalf("connection %d: %q, %v", i, got, err)
		}
	}
	if s := px.Stats(); s.DialFailures < 2 || s.UpstreamFailed != 0 {
		t.Fatalf("stats %+v: want refused tries and no failed client", s)
	}
}

func TestAllUpstreamsRefuse(t *testing.T) {
	px, addr := startProxy(t, Options{Upstreams: group(closedPort(t), closedPort(t))})
	// The reset may come so soon that it reaches the client's connect.
	c, err := net.Dial("tcp", addr)
	if err == nil {
		defer c.Close()
		_, err = io.ReadAll(c)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client got %v, want a reset", err)
	}
	testkit.WaitFor(t, "the failure to be counted", func() bool { return px.Stats().Active == 0 })
	if s := px.Stats(); s.UpstreamFailed != 1 || s.DialFailures != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestMaxConns(t *testing.T) {
	px, addr := startProxy(t, Options{Upstreams: group(serve(t, echo)), MaxConns: 1})
	a := dial(t, addr)
	a.Write([]byte("a"))
	if _, err := io.ReadFull(a, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	b := dial(t, addr)
	if got, err := io.ReadAll(b); len(got) != 0 || err != nil {
		t.Fatalf("second connection: %q, %v; want closed", got, err)
	}
	if s := px.Stats(); s.OverLimit != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestIdleTimeout(t *testing.T) {
	px, addr := startProxy(t, Options{Upstreams: group(serve(t, echo)), IdleTimeout: 200 * time.Millisecond})
	c := dial(t, addr)
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	start := time.Now()
	if got, err := io.ReadAll(c); len(got) != 0 || err != nil {
		t.Fatalf("idle relay: %q, %v; want closed", got, err)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", time.Since(start))
	}
	testkit.WaitFor(t, "the relay to end", func() bool { return px.Stats().Active == 0 })
}

// TestRelaysOnIOURing: a relay runs on the io_uring backend (it was refused
// there before, ErrIOURing): bytes both ways, a half-close from the client, the
// upstream's answer after it and its FIN, on the copy path.
func TestRelaysOnIOURing(t *testing.T) {
	eng, err := engine.New(engine.Config{Workers: 1, Backend: engine.BackendIOURing})
	if err != nil {
		t.Skipf("no io_uring engine here: %v", err)
	}
	upstream := serve(t, func(c *net.TCPConn) {
		got, _ := io.ReadAll(c) // up to the client's FIN
		c.Write(append([]byte("after fin: "), got...))
		c.CloseWrite()
	})
	px, addr := startProxyOn(t, eng, Options{Upstreams: group(upstream)})
	c := dial(t, addr)
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "after fin: hello" {
		t.Fatalf("through the relay on io_uring: %q, %v", got, err)
	}
	testkit.WaitFor(t, "the relay to end", func() bool { return px.Stats().Active == 0 })
	if s := px.Stats(); s.Copied != 21 || s.Spliced != 0 {
		t.Fatalf("stats %+v: want 21 bytes copied", s)
	}
}
