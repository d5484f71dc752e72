package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/internal/testkit"
)

// TestHealthChecksOverTLS runs http health checks against an upstream of
// https:// servers: the checks go through TLS and verify the certificate like
// the proxy's connections, so the server whose certificate the configured CA
// did not sign is taken down while the good one passes.
func TestHealthChecksOverTLS(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	healthy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "healthy") })
	origin := func(c *testcert.CA) string { return tlsOrigin(t, c, "api.gale.test", nil, healthy) }
	good, bad := origin(ca), origin(other)
	a, _ := startApp(t, fmt.Sprintf(`
workers: 1
admin: { listen: 127.0.0.1:0 }
upstreams:
  api:
    servers: ["https://%s", "https://%s"]
    tls: { ca: %s, server_name: api.gale.test }
    health_check: { type: http, interval: 200ms, timeout: 200ms, rise: 1, fall: 1, http: { path: /healthz, body_contains: healthy } }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: api }
`, good, bad, ca.CAFile))
	var st struct {
		Servers []struct {
			Address   string `json:"address"`
			Down      bool   `json:"down"`
			ChecksOK  uint64 `json:"checks_passed"`
			LastCheck string `json:"last_check"`
		} `json:"servers"`
	}
	testkit.WaitFor(t, "the good server passing its checks and the bad one down", func() bool {
		_, body := adminDo(t, "GET", "http://"+a.AdminAddr()+"/upstreams/api", "")
		if err := json.Unmarshal([]byte(body), &st); err != nil || len(st.Servers) != 2 {
			t.Fatalf("%v: %s", err, body)
		}
		return st.Servers[0].ChecksOK > 0 && !st.Servers[0].Down && st.Servers[1].Down
	})
	// (The good server passing shows the checks speak TLS: a plain request to either
	// origin gets a 400 and fails.) The other never passes: its handshake fails,
	// which last_check names as the TLS error or, when the origin hangs up first, as
	// the closed connection.
	if st.Servers[1].ChecksOK != 0 {
		t.Errorf("the server with the foreign certificate: %+v, want every check failed", st.Servers[1])
	}
}
