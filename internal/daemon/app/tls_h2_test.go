package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
)

// h2TLSYAML is a TLS server offering h2 with ALPN beside HTTP/1.1.
func h2TLSYAML(f testcert.Files) string {
	return fmt.Sprintf(`
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2]
    tls:
      certificates: [{ cert: %s, key: %s }]
      hsts: 1h
    routes:
      - match: { path: / }
        respond: { status: 200, body: "hello, world\n", headers: { Content-Type: text/plain } }
`, f.Cert, f.Key)
}

// TestH2OverTLS: with h2 among the protocols, Go's client negotiates h2 and the
// router serves it (HSTS included); without it, the same client gets HTTP/1.1.
func TestH2OverTLS(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ca.Issue("a", "localhost", "127.0.0.1")
	for yaml, want := range map[string]int{h2TLSYAML(f): 2, tlsYAML(f, ""): 1} {
		_, addr := startApp(t, yaml)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}, ForceAttemptHTTP2: true}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.ProtoMajor != want || resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "max-age=3600" {
			t.Fatalf("want HTTP/%d: %s %d HSTS %q body %q", want, resp.Proto, resp.StatusCode, resp.Header.Get("Strict-Transport-Security"), b)
		}
	}
}

// TestH2SpecOverTLS runs h2spec in strict mode over TLS (-t -k) against a gale
// listener offering h2 with ALPN: every case must pass.
func TestH2SpecOverTLS(t *testing.T) {
	bin := h2specBin(t)
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ca.Issue("a", "localhost", "127.0.0.1")
	_, addr := startApp(t, h2TLSYAML(f))
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-t", "-k", "-S", "-h", host, "-p", port, "-o", "5").CombinedOutput()
	m := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindSubmatch(out)
	if m == nil || string(m[4]) != "0" || string(m[3]) != "0" {
		t.Fatalf("h2spec -t -k -S:\n%s", out)
	}
	t.Logf("h2spec -t -k -S: %s", m[0])
}
