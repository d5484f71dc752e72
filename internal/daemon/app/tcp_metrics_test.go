package app

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// sendRaw connects to addr, writes b, half-closes and reads until the peer
// closes.
func sendRaw(t *testing.T, addr, b string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(b))
	c.(*net.TCPConn).CloseWrite()
	io.ReadAll(c)
}

// TestTCPMetrics scrapes /metrics after bad PROXY headers sent to a tcp entry
// and to an accept_proxy HTTP listener, a relayed echo, and a connect to a
// refused server: each is counted in its series.
func TestTCPMetrics(t *testing.T) {
	up := testkit.Serve(t, func(c *net.TCPConn) { io.Copy(c, c); c.CloseWrite() })
	refused := testkit.FreePort(t)
	a, _ := startApp(t, fmt.Sprintf(`workers: 1
admin: { listen: "127.0.0.1:0" }
upstreams:
  db:
    balance: round_robin
    servers: [%q, %q]
tcp:
  - listen: ["127.0.0.1:0"]
    upstream: db
    accept_proxy: [127.0.0.1/32]
servers:
  - listen: ["127.0.0.1:0"]
    accept_proxy: [127.0.0.1/32]
    routes: [{respond: {body: hi}}]
`, refused, up))
	tcpAddr, httpAddr := a.tcpAddrs["127.0.0.1:0"], a.listeners["127.0.0.1:0"].Addr
	for _, bad := range []string{"PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\n", "GET / HTTP/1.0\r\n\r\n", "PROXY TCP4 1.2.3.4\r\n"} {
		sendRaw(t, tcpAddr, bad)
		sendRaw(t, httpAddr, bad)
	}
	// Two relays: round robin tries the refused server first only on its own
	// turn, the first relay's (whose retry does not move the cursor); the
	// second relay goes to the echo at once.
	for range 2 {
		sendRaw(t, tcpAddr, "PROXY TCP4 10.0.0.1 10.0.0.2 1000 2000\r\nping")
	}
	testkit.WaitFor(t, "the relays to end", func() bool { return a.TCPProxies()[0].Stats().Active == 0 })
	text := scrape(t, &http.Client{}, a.AdminAddr())
	name := `tcp="127.0.0.1:0"`
	for series, want := range map[string]float64{
		`gale_tcp_refused_total{reason="bad_proxy",` + name + `}`:                            3,
		`gale_accept_proxy_connections_total{listen="` + httpAddr + `",result="bad_header"}`: 3,
		`gale_tcp_connections_total{` + name + `}`:                                           5,
		`gale_tcp_relays_total{` + name + `}`:                                                2,
		`gale_tcp_bytes_total{direction="to_upstream",` + name + `}`:                         8,
		`gale_tcp_bytes_total{direction="to_client",` + name + `}`:                           8,
		`gale_tcp_moved_bytes_total{path="copy",` + name + `}`:                               16,
		`gale_tcp_connect_failures_total{server="` + refused + `",` + name + `}`:             1,
		`gale_tcp_connections_active{` + name + `}`:                                          0,
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if !strings.Contains(text, `gale_tcp_refused_total{reason="upstream_failed",`+name+`} 0`) {
		t.Errorf("no upstream_failed series at 0 in\n%s", text)
	}
}
