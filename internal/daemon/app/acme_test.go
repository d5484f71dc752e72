package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/internal/testkit"
)

// acmeGet waits (a minute at most) until a TLS client that trusts Pebble's root
// and asks for name on addr gets a response, and returns its body.
func acmeGet(t *testing.T, p *testkit.Pebble, addr, name string) string {
	t.Helper()
	roots := p.Roots(t)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var last error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := cl.Get("https://" + name + "/")
		if err != nil {
			last = err
			tr.CloseIdleConnections()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	t.Fatalf("no verified response from %s for %s within a minute: %v", addr, name, last)
	return ""
}

// TestACMEEndToEnd runs gale against Pebble: the certificate is obtained with
// TLS-ALPN-01 answered by gale's TLS listener, and with HTTP-01 answered by its
// redirect_http listener, and then serves clients that verify it.
func TestACMEEndToEnd(t *testing.T) {
	for _, chal := range []string{"tls-alpn-01", "http-01"} {
		t.Run(chal, func(t *testing.T) {
			httpPort, tlsPort := testkit.FreePortNumber(t), testkit.FreePortNumber(t)
			p := testkit.StartPebble(t, httpPort, tlsPort)
			storage := t.TempDir()
			tlsAddr := "127.0.0.1:" + strconv.Itoa(tlsPort)
			a, _ := startApp(t, fmt.Sprintf(`
workers: 1
servers:
  - listen: [%q]
    tls:
      acme:
        email: ops@gale.test
        ca: %s
        ca_root: %s
        domains: [www.gale.test, gale.test]
        storage: %s
        challenges: [%s]
        poll: 50ms
        retry_min: 200ms
      redirect_http: ["127.0.0.1:%d"]
    routes:
      - respond: {body: "secure"}
`, tlsAddr, p.Directory, p.CAFile, storage, chal, httpPort))
			for _, name := range []string{"www.gale.test", "gale.test"} {
				if b := acmeGet(t, p, tlsAddr, name); b != "secure" {
					t.Fatalf("%s: body %q", name, b)
				}
			}
			if _, err := os.Stat(filepath.Join(storage, "www.gale.test.pem")); err != nil {
				t.Fatal(err)
			}
			// The plain listener still redirects everything else, and an unknown
			// token is a 404, not a redirect.
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 5 * time.Second}
			for path, want := range map[string]int{"/x": 308, "/.well-known/acme-challenge/nope": 404, "/.well-known/acme-challenge/../../etc": 404} {
				req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(httpPort)+path, nil)
				req.Host = "www.gale.test"
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("%s: status %d, want %d", path, resp.StatusCode, want)
				}
			}
			_ = a
		})
	}
}

// TestUnknownSNI: by default a name no certificate covers gets the default
// certificate; with unknown_sni: reject it gets an unrecognized_name alert,
// while a known name and a client without SNI are served.
func TestUnknownSNI(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ca.Issue("a", "a.gale.test", "127.0.0.1")
	for _, policy := range []string{"default", "reject"} {
		_, addr := startApp(t, tlsYAML(f, "      unknown_sni: "+policy))
		dial := func(name string) error {
			c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
			if err == nil {
				c.Close()
			}
			return err
		}
		if err := dial("a.gale.test"); err != nil {
			t.Fatalf("%s: known name refused: %v", policy, err)
		}
		if err := dial(""); err != nil {
			t.Fatalf("%s: client without SNI refused: %v", policy, err)
		}
		err := dial("other.gale.test")
		switch {
		case policy == "default" && err != nil:
			t.Fatalf("default: unknown name refused: %v", err)
		case policy == "reject" && (err == nil || !strings.Contains(err.Error(), "unrecognized name")):
			t.Fatalf("reject: unknown name got %v, want an unrecognized_name alert", err)
		}
	}
}
