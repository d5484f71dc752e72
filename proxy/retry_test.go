package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/lb"
	"github.com/gale-server/gale/server"
)

// refusedAddr returns an address nothing listens on: connects to it are refused.
func refusedAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return a
}

// TestProxyRetryWithBodyAfterConnectFailure: the first server refuses connections,
// so every request, whatever its method and body, must reach the second one whole.
// A refused connect sent nothing, so the request may go elsewhere; the body waits
// with the client until the connection is open (before, any request with a body
// was answered 502, its body having been queued to the dead connection).
func TestProxyRetryWithBodyAfterConnectFailure(t *testing.T) {
	var hits atomic.Int64
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%s %d %s", r.Method, n, hex.EncodeToString(h.Sum(nil)))
	}))
	u := testUpstream(t, []netip.AddrPort{refusedAddr(t), o.addr()}, func(o *UpstreamOptions) {
		o.Balance = "first" // every request tries the refusing server first
		o.Retries.Budget = 1
	})
	url := "http://" + startProxy(t, u, Route{}, nil) + "/"
	c := client()
	c.Transport.(*http.Transport).ExpectContinueTimeout = 5 * time.Second
	big := bytes.Repeat([]byte("0123456789abcdef"), 40<<10) // 640 KiB, above the high-water mark
	cases := []struct {
		method  string
		body    []byte
		chunked bool
		expect  bool
	}{
		{"POST", []byte("hello"), false, false},
		{"PUT", []byte("hello"), false, false},
		{"POST", big, false, false},
		{"POST", big, true, false},
		{"PATCH", big, false, true},
		{"POST", nil, false, false},
	}
	for _, tc := range cases {
		var body io.Reader = bytes.NewReader(tc.body)
		if tc.chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		req, _ := http.NewRequest(tc.method, url, body)
		if tc.body == nil {
			req.Body = nil
		}
		if tc.expect {
			req.Header.Set("Expect", "100-continue")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(tc.body)
		want := fmt.Sprintf("%s %d %s", tc.method, len(tc.body), hex.EncodeToString(sum[:]))
		if resp.StatusCode != 200 || string(got) != want {
			t.Fatalf("%s of %d bytes (chunked %v, expect %v): %d %q, want 200 %q",
				tc.method, len(tc.body), tc.chunked, tc.expect, resp.StatusCode, got, want)
		}
	}
	if n := hits.Load(); n != int64(len(cases)) {
		t.Fatalf("origin served %d requests, want %d", n, len(cases))
	}
	if st := u.Stats(); st.Retries != uint64(len(cases)) {
		t.Fatalf("stats %+v: want one retry per request", st)
	}
}

// TestProxyNonIdempotentNotRetried: an origin that closes a connection without
// answering may have acted on the request, so only idempotent requests are sent
// again (RFC 9110 §9.2.2: "a proxy MUST NOT automatically retry non-idempotent
// requests"), on a fresh connection and on a pooled one alike. Before, a POST or
// PATCH without a body went to the origin twice.
func TestProxyNonIdempotentNotRetried(t *testing.T) {
	// Each connection answers its first request (keep-alive) and closes on the
	// second without a response; a request for /drop is dropped at once.
	var got atomic.Value
	got.Store([]string{})
	record := func(head string) {
		line, _, _ := strings.Cut(head, "\r\n")
		got.Store(append(got.Load().([]string), line))
	}
	o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		for i := 0; ; i++ {
			head, err := readRequestHead(br, log)
			if err != nil {
				return
			}
			record(head)
			if i > 0 || strings.Contains(head, " /drop ") {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	u := testUpstream(t, []netip.AddrPort{o.addr()}, func(o *UpstreamOptions) {
		o.Retries.Tries = 3
		o.Retries.Budget = 1
	})
	addr := startProxy(t, u, Route{}, nil)
	// do sends one request on a fresh client connection (so on one loop) and
	// returns the status and the request lines the origin received for it.
	do := func(c *http.Client, method, path string) (int, []string) {
		t.Helper()
		before := len(got.Load().([]string))
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, got.Load().([]string)[before:]
	}
	for _, m := range []string{"POST", "PATCH"} {
		st, lines := do(client(), m, "/drop")
		if st != 502 || len(lines) != 1 {
			t.Fatalf("%s dropped on a fresh connection: %d, origin got %q; want 502 and one request", m, st, lines)
		}
	}
	for _, m := range []string{"GET", "DELETE"} {
		st, lines := do(client(), m, "/drop")
		if st != 502 || len(lines) != 3 {
			t.Fatalf("%s dropped on a fresh connection: %d, origin got %q; want 502 after 3 tries", m, st, lines)
		}
	}
	// A pooled connection closed as the request arrives (the keep-alive race).
	for _, tc := range []struct {
		method string
		status int
		sent   int
	}{{"POST", 502, 1}, {"GET", 200, 2}} {
		c := client()
		if st, _ := do(c, "GET", "/warm"); st != 200 {
			t.Fatalf("warm-up: %d", st)
		}
		st, lines := do(c, tc.method, "/again")
		if st != tc.status || len(lines) != tc.sent {
			t.Fatalf("%s on a pooled connection closed unanswered: %d, origin got %q; want %d after %d",
				tc.method, st, lines, tc.status, tc.sent)
		}
	}
}

// TestProxyWriteTimeout504: an origin that takes the request head and never
// reads the upload stalls the body; after timeouts.write the client gets 504
// Gateway Timeout, as for the other upstream timeouts (before, 502), and the
// request is not sent again.
func TestProxyWriteTimeout504(t *testing.T) {
	release := make(chan struct{})
	o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		if _, err := readRequestHead(br, log); err != nil {
			return
		}
		<-release // reads nothing more until the test ends
	})
	defer close(release)
	u := testUpstream(t, []netip.AddrPort{o.addr()}, func(o *UpstreamOptions) {
		o.Timeouts.Write = 200 * time.Millisecond
		o.Retries.Budget = 1
	})
	addr := startProxy(t, u, Route{}, func(so *server.Options) { so.Limits.MaxBodyBytes = 64 << 20 })
	body := bytes.Repeat([]byte("x"), 32<<20) // more than the socket buffers hold
	resp, err := client().Post("http://"+addr+"/up", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 504 {
		t.Fatalf("stalled upload: %d, want 504", resp.StatusCode)
	}
	if n := o.conns(); n != 1 {
		t.Fatalf("origin got %d connections, want 1 (no retry)", n)
	}
}

// TestProxyRefusedConnectOutsideBudget: with one of three servers refusing
// connections and no health checks, every request succeeds however long it goes
// on: a refused connect is retried on another server without spending the retry
// budget (before, once the budget's tokens were spent, the requests round robin
// sent to the dead server failed with 502, a fifth of them at the default 20%).
func TestProxyRefusedConnectOutsideBudget(t *testing.T) {
	addrs, _ := namedOrigins(t, 2, nil)
	u := testUpstream(t, []netip.AddrPort{addrs[0], refusedAddr(t), addrs[1]}, func(o *UpstreamOptions) {
		o.Balance = "round_robin"
		o.Retries.Budget = 0 // only the floor of 10 tokens
	})
	url := "http://" + startProxy(t, u, Route{}, nil) + "/"
	c := client()
	for i := range 90 {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d, want 200", i, resp.StatusCode)
		}
	}
	if st := u.Stats(); st.Retries < 20 {
		t.Fatalf("stats %+v: want a retry for each request sent to the refusing server", st)
	}
}

// The one free retry of the keep-alive race does not spend one of
// retries.tries, as nginx gives a failed cached connection its try back: a
// server whose pooled connection closed as the request was sent and that then
// refuses connections (an origin restarting) leaves the request a try for the
// next server. It spent one, and with the default tries: 2 the client got 502
// while the other server was up.
func TestProxyKeepAliveRaceRetryKeepsTries(t *testing.T) {
	a := racingOrigin(t)
	b := testkit.NewOrigin(t)
	u := testUpstream(t, []netip.AddrPort{a.addr(), b.Addr}, func(o *UpstreamOptions) {
		o.Balance = lb.First
		o.Retries = Retries{Tries: 2, ConnectFailure: true, ResetBeforeReply: true, Budget: 1}
	})
	addr := startProxy(t, u, Route{}, nil)
	c := client()
	for i, want := range []string{"a", b.Addr.String()} {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("request %d: status %d body %q, want 200 from %s", i, resp.StatusCode, body, want)
		}
	}
}

// racingOrigin answers the first request on a connection with "a", then stops
// accepting (new connections are refused) and closes each connection on its
// second request without answering: a pooled connection that loses the
// keep-alive race to a server that is going away.
func racingOrigin(t *testing.T) *rawOrigin {
	var a *rawOrigin
	a = newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		for i := 0; ; i++ {
			if _, err := readRequestHead(br, log); err != nil || i > 0 {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
			a.ln.Close()
		}
	})
	return a
}

// recordingBalancer picks the first eligible server and records each Done.
type recordingBalancer struct {
	mu   sync.Mutex
	done []string // "server:failed"
}

func (b *recordingBalancer) Pick(r *lb.Request) int {
	for i := range 2 {
		if r.Eligible(i) {
			return i
		}
	}
	return -1
}

func (b *recordingBalancer) Start(int) {}

func (b *recordingBalancer) Done(i int, _ time.Duration, failed bool) {
	b.mu.Lock()
	b.done = append(b.done, fmt.Sprintf("%d:%v", i, failed))
	b.mu.Unlock()
}

// The attempt that lost the keep-alive race is no failure for the balancer
// (p2c_ewma counted it as one of at least a second), as it is none for the
// health group; the refused connect that follows is.
func TestProxyKeepAliveRaceNoBalancerFailure(t *testing.T) {
	a := racingOrigin(t)
	b := testkit.NewOrigin(t)
	rb := &recordingBalancer{}
	u := testUpstream(t, []netip.AddrPort{a.addr(), b.Addr}, func(o *UpstreamOptions) {
		o.Balancer = rb
		o.Retries = Retries{Tries: 2, ConnectFailure: true, ResetBeforeReply: true, Budget: 1}
	})
	addr := startProxy(t, u, Route{}, nil)
	c := client()
	for range 2 {
		hget(t, c, "http://"+addr+"/")
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if got, want := strings.Join(rb.done, " "), "0:false 0:false 0:true 1:false"; got != want {
		t.Fatalf("balancer heard %s, want %s (the warm-up, the race, the refused connect, the answer)", got, want)
	}
}
