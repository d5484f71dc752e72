package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
)

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestProxyKeepAliveReuse(t *testing.T) {
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr := startProxy(t, u, Route{}, nil)
	c := client()
	const n = 200
	for i := range n {
		resp, body := get(t, c, fmt.Sprintf("http://%s/p%d", addr, i))
		if resp.StatusCode != 200 || body != fmt.Sprintf("hello /p%d", i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if got := o.conns.Load(); got != 1 {
		t.Fatalf("origin accepted %d connections for %d sequential requests, want 1", got, n)
	}
	st := u.Stats()
	if st.Dials != 1 || st.Reused != n-1 {
		t.Fatalf("stats %+v, want 1 dial and %d reused", st, n-1)
	}
}

func TestProxyMaxRequestsAndNoKeepalive(t *testing.T) {
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") }))
	u := testUpstream(t, []netip.AddrPort{o.addr()}, func(o *UpstreamOptions) { o.Keepalive.MaxRequests = 3 })
	addr := startProxy(t, u, Route{}, nil)
	c := client()
	for range 9 {
		get(t, c, "http://"+addr+"/")
	}
	if got := o.conns.Load(); got != 3 {
		t.Fatalf("origin accepted %d connections, want 3 (max_requests 3, 9 requests)", got)
	}
	u0 := testUpstream(t, []netip.AddrPort{o.addr()}, func(o *UpstreamOptions) { o.Keepalive.Idle = 0 })
	addr0 := startProxy(t, u0, Route{}, nil)
	before := o.conns.Load()
	for range 4 {
		get(t, c, "http://"+addr0+"/")
	}
	if got := o.conns.Load() - before; got != 4 {
		t.Fatalf("idle 0: origin accepted %d connections for 4 requests, want 4", got)
	}
}

func TestProxyIdleClosedByOriginNotReused(t *testing.T) {
	// The origin answers and then closes the connection while it is idle in the pool:
	// the next request must get a fresh connection, not the dead one.
	o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		if _, err := readRequestHead(br, log); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		time.Sleep(50 * time.Millisecond)
	})
	u := testUpstream(t, []netip.AddrPort{o.addr()}, func(o *UpstreamOptions) { o.Retries.ResetBeforeReply = false; o.Retries.Tries = 1 })
	addr := startProxy(t, u, Route{}, func(so *server.Options) { so.Workers = 1 })
	c := client()
	for i := range 3 {
		resp, body := get(t, c, "http://"+addr+"/")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		// Wait until the origin has closed the first connection and gale saw it.
		waitFor(t, "the pool to drop the closed connection", func() bool {
			return len(o.received()) == i+1 && u.Stats().Idle == 0
		})
	}
	if st := u.Stats(); st.Reused != 0 || st.Retries != 0 {
		t.Fatalf("stats %+v: a connection the origin closed was handed out", st)
	}
}

func TestProxyBodilessAndCloseDelimited(t *testing.T) {
	o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		for {
			head, err := readRequestHead(br, log)
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(head, "HEAD "):
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-Head: 1\r\n\r\n")
			case strings.HasPrefix(head, "GET /204 "):
				io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			case strings.HasPrefix(head, "GET /304 "):
				io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nuntil the close")
				return
			}
		}
	})
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr := startProxy(t, u, Route{}, nil)
	c := client()
	resp, err := c.Head("http://" + addr + "/")
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 1234 || resp.Header.Get("X-Head") != "1" {
		t.Fatalf("HEAD: %v %+v", err, resp)
	}
	resp.Body.Close()
	for _, p := range []string{"/204", "/304"} {
		resp, body := get(t, c, "http://"+addr+p)
		if resp.StatusCode != 204 && resp.StatusCode != 304 || body != "" {
			t.Fatalf("%s: %d %q", p, resp.StatusCode, body)
		}
	}
	if o.conns() != 1 {
		t.Fatalf("origin saw %d connections for three bodiless responses, want 1", o.conns())
	}
	resp, body := get(t, c, "http://"+addr+"/close")
	if resp.StatusCode != 200 || body != "until the close" {
		t.Fatalf("close-delimited: %d %q", resp.StatusCode, body)
	}
	// The client connection survives the origin's close.
	resp, _ = get(t, c, "http://"+addr+"/204")
	if resp.StatusCode != 204 {
		t.Fatalf("after close-delimited: %d", resp.StatusCode)
	}
}

func TestProxyShutdownClosesBusyUpstream(t *testing.T) {
	// A request in flight when shutdown starts finishes, and its upstream connection
	// is closed afterwards instead of waiting in the pool for the grace period.
	release := make(chan struct{})
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "late")
	}))
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	s := servertest.Start(t, New(u, Route{}), nil)
	done := make(chan string, 1)
	go func() {
		resp, err := client().Get("http://" + s.Addr() + "/")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	waitFor(t, "the request to reach the origin", func() bool { return u.Stats().Requests == 1 })
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", s.Addr())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if got := <-done; got != "late" {
		t.Fatalf("in-flight response %q", got)
	}
	start := time.Now()
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v after the last response: the upstream connection waited in the pool", d)
	}
}

// TestProxySaysConnectionClose: a request after which the proxy will not pool its
// connection (the last of keepalive.max_requests, or any with keepalive.idle 0)
// carries Connection: close, so the origin closes first and keeps the TIME_WAIT,
// as behind nginx without keepalive; the proxy closed without a word, and every
// unpooled request left a TIME_WAIT on the proxy's side, spending its ports.
func TestProxySaysConnectionClose(t *testing.T) {
	for _, tc := range []struct {
		name      string
		idle, max int
		want      []bool // whether the request of each round says close
	}{
		{"max_requests", 16, 2, []bool{false, true, false, true}},
		{"idle-0", 0, 1000, []bool{true, true, true}},
		{"pooled", 16, 1000, []bool{false, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
				for {
					head, err := readRequestHead(br, log)
					if err != nil {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					if strings.Contains(head, "\r\nConnection: close\r\n") {
						return
					}
				}
			})
			u := testUpstream(t, []netip.AddrPort{o.addr()}, func(o *UpstreamOptions) {
				o.Keepalive.Idle, o.Keepalive.MaxRequests = tc.idle, tc.max
			})
			url := "http://" + startProxy(t, u, Route{}, func(so *server.Options) { so.Workers = 1 }) + "/"
			c := client()
			var said []bool
			for range tc.want {
				before := o.received()
				if _, body := get(t, c, url); body != "ok" {
					t.Fatalf("body %q", body)
				}
				said = append(said, strings.Contains(o.since(before), "\r\nConnection: close\r\n"))
			}
			if fmt.Sprint(said) != fmt.Sprint(tc.want) {
				t.Fatalf("Connection: close in each request: %v, want %v", said, tc.want)
			}
		})
	}
}
