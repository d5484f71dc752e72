package l4

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/l4proto"
)

// startHAProxy runs haproxy with cfg (its %s verbs filled with args) until
// the test ends, once port accepts connections.
func startHAProxy(t *testing.T, port string, cfg string, args ...any) {
	t.Helper()
	testkit.HAProxy(t, port, fmt.Sprintf(cfg, args...))
}

const haproxyDefaults = `global
    maxconn 100
defaults
    timeout connect 5s
    timeout client 10s
    timeout server 10s
`

// TestSendProxyToHAProxy checks the headers gale sends: HAProxy with
// accept-proxy answers with the client address it parsed from them.
func TestSendProxyToHAProxy(t *testing.T) {
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			hp := closedPort(t)
			startHAProxy(t, hp, haproxyDefaults+`frontend f
    mode http
    bind %s accept-proxy
    http-request return status 200 content-type text/plain lf-string "%%[src]:%%[src_port] %%[dst]:%%[dst_port]"
`, hp)
			_, addr := startProxy(t, Options{Upstreams: group(hp), SendProxy: v})
			c := dial(t, addr)
			c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			resp, _ := io.ReadAll(c)
			body := string(resp[strings.Index(string(resp), "\r\n\r\n")+4:])
			want := c.LocalAddr().String() + " " + addr
			if body != want {
				t.Fatalf("haproxy saw %q, want %q (response %q)", body, want, resp)
			}
		})
	}
}

// proxyEcho is an upstream that reads a PROXY header with l4proto and answers
// with the client address it carries.
func proxyEcho(c *net.TCPConn) {
	r := bufio.NewReader(c)
	var buf []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return
		}
		buf = append(buf, b)
		h, n, err := l4proto.ParseProxy(buf)
		if err != nil {
			fmt.Fprintf(c, "bad header: %v", err)
			return
		}
		if n > 0 {
			fmt.Fprintf(c, "%s", h.Src)
			return
		}
	}
}

// TestAcceptProxyFromHAProxy checks the headers gale accepts: HAProxy in front
// sends v1 or v2, gale takes the client address from it and passes it on.
func TestAcceptProxyFromHAProxy(t *testing.T) {
	for _, send := range []string{"send-proxy", "send-proxy-v2"} {
		t.Run(send, func(t *testing.T) {
			px, addr := startProxy(t, Options{
				Upstreams: group(serve(t, proxyEcho)), SendProxy: 1,
				AcceptProxy: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			})
			hp := closedPort(t)
			startHAProxy(t, hp, haproxyDefaults+`listen l
    mode tcp
    bind %s
    server gale %s %s
`, hp, addr, send)
			c := dial(t, hp)
			got, _ := io.ReadAll(c)
			if string(got) != c.LocalAddr().String() {
				t.Fatalf("upstream saw client %q, want %q", got, c.LocalAddr())
			}
			if s := px.Stats(); s.BadProxy != 0 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestBadProxyHeader(t *testing.T) {
	px, addr := startProxy(t, Options{
		Upstreams:   group(serve(t, echo)),
		AcceptProxy: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	for i, in := range []string{"HELLO world\r\n", "PROXY TCP4 1.2.3.4 x 1 2\r\n", "\r\n\r\n\x00\r\nQUIT\n\x31"} {
		c := dial(t, addr)
		c.Write([]byte(in))
		if got, _ := io.ReadAll(c); len(got) != 0 {
			t.Fatalf("%q: relayed %q, want closed", in, got)
		}
		testkit.WaitFor(t, "the bad header to be counted", func() bool { return px.Stats().BadProxy == uint64(i+1) })
	}
	// A trusted client whose header is fine is relayed; what follows the header
	// is the stream.
	c := dial(t, addr)
	c.Write(l4proto.AppendV2(nil, netip.MustParseAddrPort("192.0.2.1:5"), netip.MustParseAddrPort("192.0.2.2:6")))
	c.Write([]byte("payload"))
	c.CloseWrite()
	if got, err := io.ReadAll(c); string(got) != "payload" || err != nil {
		t.Fatalf("after a good header: %q, %v", got, err)
	}
}

// TestUntrustedSourceNotParsed checks that a connection from outside
// accept_proxy is relayed as it is, a PROXY-looking first line included.
func TestUntrustedSourceNotParsed(t *testing.T) {
	px, addr := startProxy(t, Options{
		Upstreams:   group(serve(t, echo)),
		AcceptProxy: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	c := dial(t, addr)
	msg := "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nrest"
	c.Write([]byte(msg))
	c.CloseWrite()
	if got, _ := io.ReadAll(c); string(got) != msg {
		t.Fatalf("got %q", got)
	}
	if s := px.Stats(); s.BadProxy != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestPreambleCutShort: a client that ends its stream inside its PROXY header
// or its ClientHello is refused like a bad one (counted, logged); one that
// sends nothing before its FIN (a connect-only health check) is closed without
// a count. Ending inside the preamble used to close the connection silently,
// uncounted, whatever it had sent.
func TestPreambleCutShort(t *testing.T) {
	hello := []byte{0x16, 3, 1, 0, 0x50, 1, 0, 0, 0x4c, 3, 3, 'r', 'a', 'n', 'd'} // the start of an 80-byte record
	px, addr := startProxy(t, Options{
		Upstreams:   group(serve(t, echo)),
		AcceptProxy: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	sni, sniAddr := sniProxy(t, true)
	v2 := l4proto.AppendV2(nil, netip.MustParseAddrPort("192.0.2.1:5"), netip.MustParseAddrPort("192.0.2.2:6"))
	for _, tc := range []struct {
		name      string
		px        *Proxy
		addr, in  string
		bad       func(Stats) uint64
		wantCount uint64
	}{
		{"nothing, PROXY expected", px, addr, "", func(s Stats) uint64 { return s.BadProxy }, 0},
		{"part of a v1 header", px, addr, "PROXY TCP4 192.0.2.1", func(s Stats) uint64 { return s.BadProxy }, 1},
		{"part of a v2 header", px, addr, string(v2[:20]), func(s Stats) uint64 { return s.BadProxy }, 2},
		{"nothing, hello expected", sni, sniAddr, "", func(s Stats) uint64 { return s.BadHello }, 0},
		{"part of a ClientHello", sni, sniAddr, string(hello), func(s Stats) uint64 { return s.BadHello }, 1},
	} {
		c := dial(t, tc.addr)
		c.Write([]byte(tc.in))
		c.CloseWrite()
		if got, _ := io.ReadAll(c); len(got) != 0 {
			t.Fatalf("%s: relayed %q, want closed", tc.name, got)
		}
		testkit.WaitFor(t, tc.name+": the connection to end", func() bool { return tc.px.Stats().Active == 0 })
		if got := tc.bad(tc.px.Stats()); got != tc.wantCount {
			t.Fatalf("%s: count %d, want %d (stats %+v)", tc.name, got, tc.wantCount, tc.px.Stats())
		}
	}
}
