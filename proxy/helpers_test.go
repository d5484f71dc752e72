package proxy

import (
	"bufio"
	"crypto/sha256"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
)

// origin is a Go net/http server that counts the connections it accepted.
type origin struct {
	*httptest.Server
	conns atomic.Int64
}

func newOrigin(t *testing.T, h http.Handler) *origin {
	t.Helper()
	o := &origin{}
	o.Server = httptest.NewUnstartedServer(h)
	o.Server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.conns.Add(1)
		}
	}
	o.Start()
	t.Cleanup(o.Close)
	return o
}

func (o *origin) addr() netip.AddrPort {
	return netip.MustParseAddrPort(strings.TrimPrefix(o.URL, "http://"))
}

// testUpstream builds an upstream over addrs with test-friendly settings; mod may
// change the options.
func testUpstream(t *testing.T, addrs []netip.AddrPort, mod func(*UpstreamOptions)) *Upstream {
	t.Helper()
	o := UpstreamOptions{
		Name:      "test",
		Keepalive: Keepalive{Idle: 16, IdleTimeout: time.Minute, MaxRequests: 1000},
		Timeouts:  Timeouts{Connect: 2 * time.Second, ResponseHeader: 10 * time.Second, Read: 10 * time.Second, Write: 10 * time.Second},
		Retries:   Retries{Tries: 2, ConnectFailure: true, ResetBeforeReply: true, Budget: 0.2},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, a := range addrs {
		o.Servers = append(o.Servers, Server{Addr: a, Weight: 1})
	}
	if mod != nil {
		mod(&o)
	}
	u, err := NewUpstream(o, 2)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// startProxy runs gale with the proxy handler in front of the upstream and returns
// its address.
func startProxy(t *testing.T, u *Upstream, r Route, mod func(*server.Options)) string {
	t.Helper()
	s := servertest.Start(t, New(u, r), func(o *server.Options) {
		o.Workers = 2
		if mod != nil {
			mod(o)
		}
	})
	return s.Addr()
}

// rawOrigin is a deliberately lenient origin on a raw socket: it logs every byte it
// receives and answers each connection with serve.
type rawOrigin struct {
	ln   net.Listener
	mu   sync.Mutex
	got  []string // what each connection received, in accept order
	wg   sync.WaitGroup
	stop chan struct{}
}

func newRawOrigin(t *testing.T, serve func(c net.Conn, br *bufio.Reader, log func([]byte))) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{ln: ln, stop: make(chan struct{})}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.mu.Lock()
			idx := len(o.got)
			o.got = append(o.got, "")
			o.mu.Unlock()
			o.wg.Add(1)
			go func() {
				defer o.wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c), func(b []byte) {
					o.mu.Lock()
					o.got[idx] += string(b)
					o.mu.Unlock()
				})
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		o.wg.Wait()
	})
	return o
}

func (o *rawOrigin) addr() netip.AddrPort {
	return netip.MustParseAddrPort(o.ln.Addr().String())
}

func (o *rawOrigin) received() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.got...)
}

// since returns what the origin logged after before (an earlier received()): each
// upstream connection has its own entry, and any of them may have grown.
func (o *rawOrigin) since(before []string) string {
	var sb strings.Builder
	for i, got := range o.received() {
		if i < len(before) {
			got = strings.TrimPrefix(got, before[i])
		}
		sb.WriteString(got)
	}
	return sb.String()
}

// readRequestHead reads one request head from br, logging it, and returns it.
func readRequestHead(br *bufio.Reader, log func([]byte)) (string, error) {
	var sb strings.Builder
	for {
		line, err := br.ReadString('\n')
		sb.WriteString(line)
		log([]byte(line))
		if err != nil {
			return sb.String(), err
		}
		if line == "\r\n" {
			return sb.String(), nil
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// client returns a keep-alive net/http client with one connection.
func client() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}, Timeout: 30 * time.Second}
}

// conns returns how many connections the origin accepted.
func (o *rawOrigin) conns() int { return len(o.received()) }

// dialSlowClient connects to addr with an 8 KiB receive buffer (set before the
// connect), so that the proxy's queue for this client fills and it stops reading
// from the origin; the connection has a 30 s deadline.
func dialSlowClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10)
		})
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// readSlowly reads r to its end in 32 KiB pieces, a millisecond apart (at most
// about 32 MB/s), and returns how many bytes it read, their SHA-256 and the
// error that ended the reading (nil at a clean end).
func readSlowly(r io.Reader) (int64, [32]byte, error) {
	h := sha256.New()
	var n int64
	buf := make([]byte, 32<<10)
	for {
		k, err := r.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return n, [32]byte(h.Sum(nil)), err
		}
		time.Sleep(time.Millisecond)
	}
}

// getSlowly fetches GET /big through addr rounds times as a slow client
// (dialSlowClient, readSlowly) and fails the test unless every body is size
// bytes with SHA-256 want.
func getSlowly(t *testing.T, addr string, rounds int, size int64, want [32]byte) {
	t.Helper()
	for round := range rounds {
		c := dialSlowClient(t, addr)
		io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Fatal(err)
		}
		n, sum, err := readSlowly(resp.Body)
		c.Close()
		if err != nil || n != size || sum != want {
			t.Fatalf("round %d: read %d of %d bytes, SHA-256 equal %v, %v", round, n, size, sum == want, err)
		}
	}
}
