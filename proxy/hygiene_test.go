package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/server"
)

// echoHeadOrigin answers every request with its head as the origin received it.
func echoHeadOrigin(t *testing.T) *rawOrigin {
	return newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(req.Body)
			var sb strings.Builder
			fmt.Fprintf(&sb, "%s %s\n", req.Method, req.RequestURI)
			fmt.Fprintf(&sb, "Host: %s\n", req.Host)
			for _, k := range sortedKeys(req.Header) {
				for _, v := range req.Header[k] {
					fmt.Fprintf(&sb, "%s: %s\n", k, v)
				}
			}
			fmt.Fprintf(&sb, "TE=%v CL=%d body=%q\n", req.TransferEncoding, req.ContentLength, body)
			log([]byte(sb.String()))
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", sb.Len(), sb.String())
		}
	})
}

func sortedKeys(h http.Header) []string {
	var ks []string
	for k := range h {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// roundTrip sends raw bytes to addr and returns everything the proxy answers until
// it closes or goes quiet.
func roundTrip(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	var out strings.Builder
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out.String()
		}
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(&out, "%d\n%s", resp.StatusCode, b)
		if resp.Close {
			return out.String()
		}
	}
}

func TestProxyHopByHopAndForwarding(t *testing.T) {
	o := echoHeadOrigin(t)
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr := startProxy(t, u, Route{SetHeaders: [][2]string{{"X-Set", "fixed"}}}, nil)
	got := roundTrip(t, addr, "GET /a/%2e%2e/b?q=1 HTTP/1.1\r\nHost: example.com\r\n"+
		"Connection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"+
		"Proxy-Authorization: Basic x\r\nProxy-Connection: keep-alive\r\nHTTP2-Settings: AAAA\r\n"+
		"Upgrade: h2c\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\n"+
		"X-Real-IP: 6.6.6.6\r\nX-Set: client\r\nX-Keep: yes\r\n\r\n")
	for _, bad := range []string{"X-Secret", "Keep-Alive", "Te:", "Proxy-", "Http2-Settings", "Upgrade", "6.6.6.6", "https", "client", "Connection"} {
		if strings.Contains(got, bad) {
			t.Errorf("origin saw %q:\n%s", bad, got)
		}
	}
	for _, want := range []string{"GET /a/%2e%2e/b?q=1\n", "Host: " + o.addr().String(), "X-Keep: yes", "X-Set: fixed",
		"X-Forwarded-For: 127.0.0.1\n", "X-Forwarded-Proto: http\n", "X-Forwarded-Host: example.com\n",
		"X-Real-Ip: 127.0.0.1\n", `Forwarded: for=127.0.0.1;host="example.com";proto=http`} {
		if !strings.Contains(got, want) {
			t.Errorf("origin did not see %q:\n%s", want, got)
		}
	}

	// A trusted peer's values are kept and appended to; the client's Host is kept
	// with preserve_host; strip_prefix forwards the rewritten normalized path.
	u2 := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr2 := startProxy(t, u2, Route{StripPrefix: "/api", PreserveHost: true,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, nil)
	got = roundTrip(t, addr2, "GET /api//x/../users%20list?z HTTP/1.1\r\nHost: example.com\r\n"+
		"X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nForwarded: for=10.0.0.1\r\nX-Real-IP: 10.0.0.1\r\n\r\n")
	for _, want := range []string{"GET /users%20list?z\n", "Host: example.com\n", "X-Forwarded-For: 10.0.0.1, 127.0.0.1\n",
		"X-Forwarded-Proto: https\n", "Forwarded: for=10.0.0.1, for=127.0.0.1;", "X-Real-Ip: 10.0.0.1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("origin did not see %q:\n%s", want, got)
		}
	}
	// From a trusted peer that sent no X-Real-IP, the peer is the client.
	got = roundTrip(t, addr2, "GET /api HTTP/1.1\r\nHost: h\r\n\r\n")
	if !strings.Contains(got, "GET /\n") || !strings.Contains(got, "X-Real-Ip: 127.0.0.1\n") {
		t.Errorf("strip_prefix of the whole path, X-Real-IP of the peer: %s", got)
	}
}

func TestProxyResponseHopByHop(t *testing.T) {
	o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		if _, err := readRequestHead(br, log); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\nKeep-Alive: timeout=1\r\n"+
			"Proxy-Connection: x\r\nServer: origin\r\nX-End: 2\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"2\r\nok\r\n0\r\nX-Sum: 42\r\n\r\n")
	})
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr := startProxy(t, u, Route{}, nil)
	resp, body := get(t, client(), "http://"+addr+"/")
	if body != "ok" || resp.Header.Get("X-End") != "2" || resp.Trailer.Get("X-Sum") != "42" {
		t.Fatalf("%q %v trailers %v", body, resp.Header, resp.Trailer)
	}
	// Trailer announces the trailers, which are forwarded, and goes with them (it
	// was dropped as hop-by-hop), as nginx and Caddy pass it on. (Go's client moves
	// it into resp.Trailer, so the head is read as it came.)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	head, err := readRequestHead(bufio.NewReader(c), func([]byte) {}) // a response head reads the same
	if err != nil || !strings.Contains(head, "\r\nTrailer: X-Sum\r\n") {
		t.Errorf("response head without the origin's Trailer (%v):\n%s", err, head)
	}
	for _, h := range []string{"X-Hop", "Keep-Alive", "Proxy-Connection"} {
		if resp.Header.Get(h) != "" {
			t.Errorf("client got hop-by-hop %s", h)
		}
	}
	if s := resp.Header.Values("Server"); len(s) != 1 || s[0] != "gale" {
		t.Errorf("Server %q", s)
	}
}

func TestProxySmugglingProbes(t *testing.T) {
	// The origin logs every request it parses. For each probe it must see at most as
	// many requests as the client sent, each with the framing gale parsed. Each
	// probe has its own origin and proxy: a request whose body gale refused (400)
	// after forwarding its head is logged once gale closes its upstream
	// connection, which may come after the next probe started.
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	probes := []struct {
		name   string
		raw    string
		status string // first status the client must get
	}{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, "400"},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + smuggled, "400"},
		{"two CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 38\r\n\r\n" + smuggled, "400"},
		{"TE obfuscated", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled, "400"},
		{"TE space", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled, "400"},
		{"obs-fold TE", "POST / HTTP/1.1\r\nHost: x\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, "400"},
		{"bare LF", "POST / HTTP/1.1\nHost: x\nContent-Length: 0\n\n" + smuggled, "400"},
		{"Connection names CL", "POST / HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: " + fmt.Sprint(len(smuggled)) + "\r\n\r\n" + smuggled, "200"},
		{"Connection names TE", "POST / HTTP/1.1\r\nHost: x\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x", len(smuggled)) + "\r\n" + smuggled + "\r\n0\r\n\r\n", "200"},
		{"chunk ext", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n26;a=\"0\r\n\r\n\"\r\n" + smuggled + "\r\n0\r\n\r\n", "400"},
		{"h2c upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAAA\r\n\r\n", "200"},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			o := echoHeadOrigin(t)
			addr := startProxy(t, testUpstream(t, []netip.AddrPort{o.addr()}, nil), Route{}, nil)
			before := o.received()
			got := roundTrip(t, addr, p.raw)
			if !strings.HasPrefix(got, p.status+"\n") {
				t.Fatalf("client got %q, want %s first", got, p.status)
			}
			seen := o.since(before)
			if strings.HasPrefix(seen, "GET /smuggled") || strings.Contains(seen, "\nGET /smuggled") {
				t.Fatalf("the origin saw the smuggled request:\n%s", seen)
			}
			if n := strings.Count(seen, "\nTE="); n > 1 {
				t.Fatalf("the origin saw %d requests for one:\n%s", n, seen)
			}
			if strings.Contains(seen, "h2c") || strings.Contains(seen, "Http2-Settings") {
				t.Fatalf("h2c upgrade forwarded:\n%s", seen)
			}
		})
	}
}

// TestProxySetHeadersReplaceOwnFields: set_headers naming a field the proxy writes
// itself (Host, the forwarding fields, Via) replaces gale's value, as nginx's
// proxy_set_header Host does; before, the origin got both, two Host fields among
// them. The replaced Host stays the first field.
func TestProxySetHeadersReplaceOwnFields(t *testing.T) {
	o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		for {
			if _, err := readRequestHead(br, log); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		}
	})
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr := startProxy(t, u, Route{Via: "gale", SetHeaders: [][2]string{
		{"host", "app.internal"}, {"X-Forwarded-Proto", "https"}, {"X-Forwarded-For", "192.0.2.1"}, {"Via", "1.1 edge"},
		{"x-real-ip", "192.0.2.2"},
	}}, nil)
	before := o.received()
	roundTrip(t, addr, "GET /x HTTP/1.1\r\nHost: client.example\r\nX-Forwarded-Proto: http\r\nX-Real-IP: 6.6.6.6\r\n\r\n")
	got := o.since(before)
	lines := strings.Split(strings.TrimSpace(got), "\r\n")
	if len(lines) < 2 || lines[1] != "Host: app.internal" {
		t.Fatalf("the set Host is not the first field:\n%s", got)
	}
	for _, name := range []string{"host", "x-forwarded-proto", "x-forwarded-for", "via", "x-real-ip"} {
		n := 0
		for _, l := range lines[1:] {
			if k, _, _ := strings.Cut(l, ":"); strings.EqualFold(k, name) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("origin got %d %s fields, want 1:\n%s", n, name, got)
		}
	}
	for _, want := range []string{"X-Forwarded-Proto: https\r\n", "X-Forwarded-For: 192.0.2.1\r\n", "Via: 1.1 edge\r\n", "x-real-ip: 192.0.2.2\r\n",
		"X-Forwarded-Host: client.example\r\n", `Forwarded: for=127.0.0.1;host="client.example";proto=http`} {
		if !strings.Contains(got, want) {
			t.Errorf("origin did not see %q:\n%s", want, got)
		}
	}
}

// TestClientBodyErrorReleasesUpstream: when the server answers a request
// itself because its body cannot be received (a malformed chunk: 400; a body
// over the limit: 413; a body that stopped arriving: 408), the proxy closes
// the upstream connection that carried the request's start, and the origin,
// which was reading the body, sees it end. The connection was left waiting
// for the rest of a body that would never come, with no timer armed, and it
// counted as a request in flight for least_conn and the limits for as long as
// the origin kept it.
func TestClientBodyErrorReleasesUpstream(t *testing.T) {
	for _, tc := range []struct {
		name, req, want string
	}{
		{"bad-chunk", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", "400"},
		{"too-large", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n400\r\n" + string(make([]byte, 1024)) + "\r\n", "413"},
		{"body-timeout", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhello", "408"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bodyEnded := make(chan error, 1)
			// The upstream connection is released either way the origin sees it:
			// its handler's body read fails, or (when gale closed it before the
			// head was written, as the portable engine's writer goroutine may
			// still hold it) the connection closes without a request.
			closed := make(chan struct{}, 4)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := io.ReadAll(r.Body)
				bodyEnded <- err
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateClosed {
					closed <- struct{}{}
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			u := testUpstream(t, []netip.AddrPort{netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))}, nil)
			addr := startProxy(t, u, Route{}, func(so *server.Options) {
				so.Limits.MaxBodyBytes = 512
				so.BodyTimeout = 200 * time.Millisecond
			})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte(tc.req))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			head := make([]byte, 12)
			if _, err := io.ReadFull(c, head); err != nil || string(head[9:12]) != tc.want {
				t.Fatalf("client got %q (%v), want status %s", head, err, tc.want)
			}
			select {
			case err := <-bodyEnded:
				if err == nil {
					t.Fatal("the origin read a complete body")
				}
			case <-closed:
				select {
				case err := <-bodyEnded:
					if err == nil {
						t.Fatal("the origin read a complete body")
					}
				default:
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the origin was still reading the request body 5s after the client got its answer: the upstream connection was not released")
			}
		})
	}
}

// TestProxyDropsUnderscoreFields: request fields whose names hold an underscore are
// not forwarded, as nginx does by default (underscores_in_headers off), since
// origins behind CGI, WSGI or PHP read X_Forwarded_For as X-Forwarded-For, which the
// proxy replaces: the client could otherwise set it. The route's
// UnderscoresInHeaders forwards them.
func TestProxyDropsUnderscoreFields(t *testing.T) {
	o := echoHeadOrigin(t)
	raw := "GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\n_: u\r\nX-Keep: yes\r\n\r\n"
	for _, keep := range []bool{false, true} {
		u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
		addr := startProxy(t, u, Route{UnderscoresInHeaders: keep}, nil)
		got := strings.ToLower(roundTrip(t, addr, raw))
		if !strings.HasPrefix(got, "200\n") || !strings.Contains(got, "x-keep: yes") {
			t.Fatalf("keep %v: %s", keep, got)
		}
		for _, name := range []string{"x_forwarded_for: 6.6.6.6", "x_real_ip: 6.6.6.6", "\n_: u"} {
			if strings.Contains(got, name) != keep {
				t.Errorf("keep %v: origin saw %q = %v:\n%s", keep, name, !keep, got)
			}
		}
	}
}
