package app

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// getFrom dials addr from the loopback address src (127.0.0.2: a client other
// than HAProxy, which connects from 127.0.0.1) and sends one HTTP/1.0 request.
func getFrom(t *testing.T, src, addr string) string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /who HTTP/1.0\r\nHost: a\r\n\r\n")
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (%q)", err, got)
	}
	return string(got)
}

// TestAcceptProxyHTTP puts HAProxy (mode tcp, send-proxy and send-proxy-v2) in
// front of a gale HTTP server with accept_proxy: gale takes the client address
// from the header, so the X-Forwarded-For it sends to the origin is the real
// client (127.0.0.2), not HAProxy (127.0.0.1). A trusted peer that sends a bad
// header is closed and counted; an untrusted one is served as it is.
func TestAcceptProxyHTTP(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "xff=%s", r.Header.Get("X-Forwarded-For"))
	}))
	defer origin.Close()
	a, addr := startApp(t, fmt.Sprintf(`workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    accept_proxy: [127.0.0.1/32]
    routes:
      - proxy: {upstreams: [%q]}
`, origin.Listener.Addr().String()))
	for _, send := range []string{"send-proxy", "send-proxy-v2"} {
		t.Run(send, func(t *testing.T) {
			hp := haproxyInFront(t, addr, send)
			resp := getFrom(t, "127.0.0.2", hp)
			if !strings.HasPrefix(resp, "HTTP/1.1 200") || !strings.HasSuffix(resp, "xff=127.0.0.2") {
				t.Fatalf("through HAProxy %s: %q; want 200 with xff=127.0.0.2", send, resp)
			}
		})
	}
	g := a.ProxyGates()
	if len(g) != 1 || g[0].Stats().Accepted < 2 { // (and the connections of HAProxy's readiness wait)
		t.Fatalf("gates %d, stats %+v", len(g), g[0].Stats())
	}
	// A trusted source without a valid header: closed, no response, counted.
	if resp := getFrom(t, "127.0.0.1", addr); resp != "" {
		t.Fatalf("a request without a PROXY header from a trusted address got %q", resp)
	}
	testkit.WaitFor(t, "the bad header to be counted", func() bool { return g[0].Stats().BadProxy == 1 })
	// An untrusted source is served directly, with its own address.
	if resp := getFrom(t, "127.0.0.2", addr); !strings.HasSuffix(resp, "xff=127.0.0.2") {
		t.Fatalf("untrusted client: %q", resp)
	}
	if s := g[0].Stats(); s.Passed != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// haproxyInFront starts HAProxy in mode tcp relaying to addr with the given
// PROXY option (send-proxy, send-proxy-v2) and returns its address.
func haproxyInFront(t *testing.T, addr, send string) string {
	t.Helper()
	hp := testkit.FreePort(t)
	testkit.HAProxy(t, hp, fmt.Sprintf(`global
    maxconn 100
defaults
    timeout connect 5s
    timeout client 10s
    timeout server 10s
listen l
    mode tcp
    bind %s
    server gale %s %s
`, hp, addr, send))
	return hp
}

// TestAcceptProxyTLS: the PROXY header comes before the TLS handshake, so a
// TLS server with accept_proxy reads it first, then terminates TLS on the
// bytes that follow; the origin sees the real client in X-Forwarded-For.
func TestAcceptProxyTLS(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "xff=%s", r.Header.Get("X-Forwarded-For"))
	}))
	defer origin.Close()
	ca, f := serverCert(t)
	_, addr := startApp(t, fmt.Sprintf(`workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    accept_proxy: [127.0.0.1]
    tls:
      certificates: [{cert: %s, key: %s}]
    routes:
      - proxy: {upstreams: [%q]}
`, f.Cert, f.Key, origin.Listener.Addr().String()))
	hp := haproxyInFront(t, addr, "send-proxy-v2")
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", hp, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS through HAProxy send-proxy-v2: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
	got, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(got), "HTTP/1.1 200") || !strings.HasSuffix(string(got), "xff=127.0.0.2") {
		t.Fatalf("got %q; want 200 with xff=127.0.0.2", got)
	}
}
