package app

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testcert"
)

// TestProxyToHTTPSUpstream: a configured https:// upstream with tls.ca and
// tls.server_name is verified, gets the server name as SNI and Host, and a
// route to the same origin without the CA answers 502.
func TestProxyToHTTPSUpstream(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.NewCA(dir)
	f, _ := ca.Issue("origin", "api.gale.test")
	kp, _ := tls.LoadX509KeyPair(f.Cert, f.Key)
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "sni=%s host=%s", r.TLS.ServerName, r.Host)
	}))
	o.TLS = &tls.Config{Certificates: []tls.Certificate{kp}}
	o.StartTLS()
	t.Cleanup(o.Close)
	origin := strings.TrimPrefix(o.URL, "https://")
	_, addr := startApp(t, fmt.Sprintf(`
workers: 1
upstreams:
  api:
    servers: ["https://%[1]s"]
    tls: { ca: %[2]s, server_name: api.gale.test }
  unverified:
    servers: ["https://%[1]s"]
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /bad }
        proxy: { upstream: unverified }
      - proxy: { upstream: api }
`, origin, ca.CAFile))
	for path, want := range map[string]string{"/": "200 sni=api.gale.test host=api.gale.test", "/bad": "502"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := fmt.Sprint(resp.StatusCode)
		if resp.StatusCode == 200 {
			got += " " + string(b)
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", path, got, want)
		}
	}
}
