package app

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/gale-server/gale/internal/testcert"
)

// TestProxyUpstreamALPN: the proxy offers http/1.1 with ALPN to https://
// upstreams by default and the origin sees it negotiated; `alpn: []` sends no
// ALPN extension (nothing negotiated); an origin that supports none of the
// offered protocols ends the handshake with no_application_protocol, a 502,
// and serves the proxy once it offers none.
func TestProxyUpstreamALPN(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	origin := func(protos []string) string {
		return tlsOrigin(t, ca, "api.gale.test", protos, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "alpn=%q", r.TLS.NegotiatedProtocol)
		}))
	}
	h1, other := origin([]string{"http/1.1"}), origin([]string{"spdy/3"})
	_, addr := startApp(t, fmt.Sprintf(`
workers: 1
upstreams:
  default: { servers: ["https://%[1]s"], tls: { ca: %[3]s, server_name: api.gale.test } }
  none: { servers: ["https://%[1]s"], tls: { ca: %[3]s, server_name: api.gale.test, alpn: [] } }
  other: { servers: ["https://%[2]s"], tls: { ca: %[3]s, server_name: api.gale.test }, retries: { tries: 1 } }
  other_none: { servers: ["https://%[2]s"], tls: { ca: %[3]s, server_name: api.gale.test, alpn: [] } }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - { match: { path: /default }, proxy: { upstream: default } }
      - { match: { path: /none }, proxy: { upstream: none } }
      - { match: { path: /other_none }, proxy: { upstream: other_none } }
      - { match: { path: /other }, proxy: { upstream: other } }
`, h1, other, ca.CAFile))
	for path, want := range map[string]struct {
		status int
		body   string
	}{
		"/default":    {200, `alpn="http/1.1"`},
		"/none":       {200, `alpn=""`},
		"/other":      {502, ""},
		"/other_none": {200, `alpn=""`},
	} {
		status, body := get(t, http.DefaultClient, "GET", "http://"+addr+path, "")
		if status != want.status || want.body != "" && body != want.body {
			t.Errorf("%s: %d %q, want %d %q", path, status, body, want.status, want.body)
		}
	}
}
