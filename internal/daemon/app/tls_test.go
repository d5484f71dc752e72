package app

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/internal/testkit"
)

func tlsYAML(f testcert.Files, extra string) string {
	return fmt.Sprintf(`
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    tls:
      certificates:
        - cert: %s
          key: %s
      hsts: 1h
%s
    routes:
      - respond: {body: "secure"}
`, f.Cert, f.Key, extra)
}

func TestTLSServerReloadsCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := ca.Issue("a", "localhost", "127.0.0.1")
	b1, _ := ca.Issue("b", "localhost", "127.0.0.1")
	a, _ := startApp(t, tlsYAML(a1, `      redirect_http: ["127.0.0.2:0"]`))
	addrs := a.Addrs()
	tlsAddr, plainAddr := addrs["127.0.0.1:0"], addrs["127.0.0.2:0"]
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	serial := func() string {
		resp, err := c.Get("https://" + tlsAddr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body) // an unread body would make the client drop the connection
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "max-age=3600" {
			t.Fatalf("status %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	first := serial()

	cfg, err := config.Parse("test.yaml", []byte(tlsYAML(b1, `      redirect_http: ["127.0.0.2:0"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != first {
		t.Fatalf("the open connection changed certificate (%s -> %s): it was dropped", first, got)
	}
	tr.CloseIdleConnections()
	if got := serial(); got == first {
		t.Fatal("a new connection still gets the old certificate after the reload")
	}

	// An invalid certificate: the configuration is refused with its position.
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o644)
	_, err = config.Parse("test.yaml", []byte(tlsYAML(testcert.Files{Cert: bad, Key: b1.Key}, "")))
	if err == nil || !strings.Contains(err.Error(), "test.yaml:7:") || !strings.Contains(err.Error(), "bad.pem") {
		t.Fatalf("invalid certificate: %v", err)
	}

	// Plain HTTP on the redirect address: 308 to https with the TLS port.
	nc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := nc.Get("http://" + plainAddr + "/x?y=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 308 || !strings.HasPrefix(loc, "https://127.0.0.2") || !strings.HasSuffix(loc, "/x?y=1") {
		t.Fatalf("redirect: %d %q", resp.StatusCode, loc)
	}
}

// TestReloadRefusesTLSChangeOnOpenAddress: a reload that adds tls to an
// address served in plain HTTP (or removes it from one served with TLS) is
// refused as a whole, with an error naming the address: applied, it would serve
// routes meant for TLS in clear text (or keep TLS the file no longer has). The
// running routes keep answering as before.
func TestReloadRefusesTLSChangeOnOpenAddress(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ca.Issue("a", "localhost", "127.0.0.1")
	plain := `
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - respond: {body: "plain"}
`
	for _, tc := range []struct{ name, from, to, want string }{
		{"adding tls", plain, tlsYAML(f, ""), "serves plain HTTP: adding tls"},
		{"removing tls", tlsYAML(f, ""), plain, "serves TLS: removing tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, addr := startApp(t, tc.from)
			cfg, err := config.Parse("test.yaml", []byte(tc.to))
			if err != nil {
				t.Fatal(err)
			}
			err = a.Reload(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "127.0.0.1:0") {
				t.Fatalf("reload: %v, want an error with %q naming the address", err, tc.want)
			}
			scheme := "http"
			if tc.from != plain {
				scheme = "https"
			}
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(scheme + "://" + addr + "/")
			if err != nil {
				t.Fatalf("after the refused reload: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := map[string]string{"http": "plain", "https": "secure"}[scheme]; string(b) != want {
				t.Errorf("after the refused reload %s answers %q, want the running %q", scheme, b, want)
			}
		})
	}
}

// TestReloadWarnsAboutTLSListenerSettings: handshake_timeout and the session
// ticket settings are taken by a TLS listener when it opens, so a reload that
// changes them on a served address names them in the restart-or-upgrade
// warning while the new certificates are applied.
func TestReloadWarnsAboutTLSListenerSettings(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ca.Issue("a", "localhost", "127.0.0.1")
	logs := &testkit.SyncBuffer{}
	a, _ := startAppLog(t, tlsYAML(f, ""), slog.New(slog.NewTextHandler(logs, nil)))
	cfg, err := config.Parse("test.yaml", []byte(tlsYAML(f, "      handshake_timeout: 3s\n      ticket_rotation: 1h")))
	if err != nil {
		t.Fatal(err)
	}
	logs.Take()
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := logs.Take(); !strings.Contains(got, "keys=tls.handshake_timeout,tls.ticket_rotation") {
		t.Errorf("reload log lacks a warning naming tls.handshake_timeout and tls.ticket_rotation:\n%s", got)
	}
}

// TestRedirectHTTPTargets: a redirect_http address keeps the path and query of
// an absolute-form target ("GET http://host/p?q", which a client configured
// with the server as its proxy sends), with the target's host, as nginx's
// "return 308 https://$host$request_uri" does; it used to append the whole
// absolute URI behind the host ("https://h:443http://h/p?q"). "OPTIONS *" and
// CONNECT have no path to redirect to and get 400, as from nginx.
func TestRedirectHTTPTargets(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ca.Issue("a", "localhost", "127.0.0.1")
	tlsAddr := testkit.FreePort(t)
	_, port, _ := net.SplitHostPort(tlsAddr)
	a, _ := startApp(t, strings.Replace(tlsYAML(f, `      redirect_http: ["127.0.0.2:0"]`), "127.0.0.1:0", tlsAddr, 1))
	plain := a.Addrs()["127.0.0.2:0"]
	for _, tc := range []struct{ req, status, location string }{
		{"GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", "308", "https://example.com:" + port + "/p?q=1"},
		{"GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", "308", "https://example.com:" + port + "/p?q=1"},
		{"GET http://other.example:80/a/b HTTP/1.1\r\nHost: example.com\r\n\r\n", "308", "https://other.example:" + port + "/a/b"},
		{"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", "308", "https://example.com:" + port + "/"},
		{"GET http://example.com/? HTTP/1.1\r\nHost: example.com\r\n\r\n", "308", "https://example.com:" + port + "/?"},
		{"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n", "400", ""},
		{"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "400", ""},
	} {
		c := testkit.Dial(t, plain)
		if _, err := c.Write([]byte(tc.req)); err != nil {
			t.Fatal(err)
		}
		method, _, _ := strings.Cut(tc.req, " ")
		resp := testkit.ReadResponse(t, bufio.NewReader(c), method)
		resp.Body.Close()
		c.Close()
		if got := strconv.Itoa(resp.StatusCode); got != tc.status || resp.Header.Get("Location") != tc.location {
			t.Errorf("%q: %s Location %q, want %s %q", tc.req, got, resp.Header.Get("Location"), tc.status, tc.location)
		}
	}
}
