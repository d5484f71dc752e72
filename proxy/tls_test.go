package proxy

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/tlsterm"
)

// clientTLS returns a client configuration for an upstream.
func clientTLS(t *testing.T, f tlsterm.ClientFiles) *tls.Config {
	t.Helper()
	c, err := tlsterm.ClientConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nginxTLS starts nginx serving https with a certificate of a test CA for
// origin.gale.test, and a proxy in front of it that verifies it by that name.
func nginxTLS(t *testing.T) (dir, logPath, addr string, u *Upstream) {
	t.Helper()
	dir = t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := ca.Issue("origin", "origin.gale.test")
	origin, logPath := startNginx(t, dir, "ssl", fmt.Sprintf("ssl_certificate %s; ssl_certificate_key %s;", cert.Cert, cert.Key))
	u = testUpstream(t, []netip.AddrPort{origin}, func(o *UpstreamOptions) {
		o.TLS = clientTLS(t, tlsterm.ClientFiles{CA: ca.CAFile, ServerName: "origin.gale.test"})
	})
	return dir, logPath, startProxy(t, u, Route{}, nil), u
}

// TestProxyTLSNginxOrigin: an https upstream served by nginx with a certificate
// of a test CA: verified, SNI sent, bodies byte-exact, and keep-alive TLS
// connections reused from the pool (nginx logs the connection number).
func TestProxyTLSNginxOrigin(t *testing.T) {
	dir, logPath, addr, _ := nginxTLS(t)
	const n = 60
	fetchMixed(t, dir, addr, n)
	var lines []string
	waitFor(t, "nginx's access log", func() bool {
		raw, _ := os.ReadFile(logPath)
		lines = strings.Split(strings.TrimSpace(string(raw)), "\n")
		return len(lines) == n
	})
	conns := map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(l)
		conns[f[0]] = true
		if f[2] != "origin.gale.test" {
			t.Fatalf("nginx saw SNI %q, want origin.gale.test: %s", f[2], l)
		}
	}
	if len(conns) != 1 {
		t.Fatalf("nginx saw %d TLS connections for %d sequential keep-alive requests, want 1", len(conns), n)
	}
}

// getOnce makes one GET of / through the proxy at addr.
func getOnce(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := client().Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// TestProxyTLSBadCertificate: verification is on by default; a certificate
// from an unknown CA, or for another name, is a 502 (the handshake fails as a
// connect failure), the right CA and name are served, and
// insecure_skip_verify accepts anything.
func TestProxyTLSBadCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.NewCA(dir)
	other, _ := testcert.NewCA(t.TempDir())
	srvCert, _ := ca.Issue("origin", "origin.gale.test")
	kp, _ := tls.LoadX509KeyPair(srvCert.Cert, srvCert.Key)
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "origin") }))
	o.TLS = &tls.Config{Certificates: []tls.Certificate{kp}}
	o.StartTLS()
	t.Cleanup(o.Close)
	oaddr := netip.MustParseAddrPort(strings.TrimPrefix(o.URL, "https://"))
	for name, tc := range map[string]struct {
		files tlsterm.ClientFiles
		want  int
	}{
		"unknown CA":           {tlsterm.ClientFiles{CA: other.CAFile, ServerName: "origin.gale.test"}, 502},
		"system roots":         {tlsterm.ClientFiles{ServerName: "origin.gale.test"}, 502},
		"wrong name":           {tlsterm.ClientFiles{CA: ca.CAFile, ServerName: "other.gale.test"}, 502},
		"IP not in the cert":   {tlsterm.ClientFiles{CA: ca.CAFile}, 502},
		"right CA and name":    {tlsterm.ClientFiles{CA: ca.CAFile, ServerName: "origin.gale.test"}, 200},
		"insecure_skip_verify": {tlsterm.ClientFiles{InsecureSkipVerify: true}, 200},
	} {
		u := testUpstream(t, []netip.AddrPort{oaddr}, func(o *UpstreamOptions) { o.TLS = clientTLS(t, tc.files) })
		status, b := getOnce(t, startProxy(t, u, Route{}, nil))
		if status != tc.want || tc.want == 200 && b != "origin" {
			t.Errorf("%s: status %d body %q, want %d", name, status, b, tc.want)
		}
	}
}

// TestProxyTLSClientCertificate: an origin that requires a client certificate
// serves the upstream with one and refuses (502) the upstream without.
func TestProxyTLSClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.NewCA(dir)
	srvCert, _ := ca.Issue("origin", "127.0.0.1")
	cliCert, _ := ca.Issue("client", "gale-client")
	kp, _ := tls.LoadX509KeyPair(srvCert.Cert, srvCert.Key)
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	o.TLS = &tls.Config{Certificates: []tls.Certificate{kp}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	o.StartTLS()
	t.Cleanup(o.Close)
	oaddr := netip.MustParseAddrPort(strings.TrimPrefix(o.URL, "https://"))
	for _, withCert := range []bool{true, false} {
		f := tlsterm.ClientFiles{CA: ca.CAFile}
		if withCert {
			f.Cert, f.Key = cliCert.Cert, cliCert.Key
		}
		u := testUpstream(t, []netip.AddrPort{oaddr}, func(o *UpstreamOptions) { o.TLS = clientTLS(t, f) })
		status, b := getOnce(t, startProxy(t, u, Route{}, nil))
		want := 502
		if withCert {
			want = 200
		}
		if status != want {
			t.Fatalf("client certificate %v: status %d %q, want %d", withCert, status, b, want)
		}
	}
}

// TestProxyTLSOriginCloseDelimitedSlowClient: an https origin writes an 8 MiB
// close-delimited body and closes (close_notify, then its FIN) behind a slow
// client, so that the TLS layer holds records the paused proxy has not read when
// the FIN arrives. The client must get every byte (SHA-256).
func TestProxyTLSOriginCloseDelimitedSlowClient(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.NewCA(dir)
	srvCert, _ := ca.Issue("origin", "origin.gale.test")
	kp, err := tls.LoadX509KeyPair(srvCert.Cert, srvCert.Key)
	if err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i*5 + i>>11)
	}
	want := sha256.Sum256(body)
	o := newRawOrigin(t, func(c net.Conn, _ *bufio.Reader, log func([]byte)) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{kp}})
		defer tc.Close()
		if _, err := http.ReadRequest(bufio.NewReader(tc)); err != nil {
			return
		}
		io.WriteString(tc, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
		tc.Write(body)
	})
	u := testUpstream(t, []netip.AddrPort{o.addr()}, func(o *UpstreamOptions) {
		o.TLS = clientTLS(t, tlsterm.ClientFiles{CA: ca.CAFile, ServerName: "origin.gale.test"})
	})
	addr := startProxy(t, u, Route{}, nil)
	getSlowly(t, addr, 3, size, want)
}
