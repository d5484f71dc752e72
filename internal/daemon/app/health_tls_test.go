package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

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

// TestHealthChecksOverTLSCloseNotify: every http check over TLS that got its
// answer ends with a close_notify alert, not a bare FIN that the origin logs
// as a truncated connection at every interval.
func TestHealthChecksOverTLSCloseNotify(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := ca.Issue("api", "api.gale.test")
	kp, err := testcert.KeyPair(cert)
	if err != nil {
		t.Fatal(err)
	}
	addr, ends := testkit.TLS12Origin(t, kp, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy")
	startApp(t, fmt.Sprintf(`
workers: 1
upstreams:
  api:
    servers: ["https://%s"]
    tls: { ca: %s, server_name: api.gale.test }
    health_check: { type: http, interval: 300ms, timeout: 300ms, rise: 1, fall: 1, http: { path: /healthz, body_contains: healthy } }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: api }
`, addr, ca.CAFile))
	for i := range 3 {
		select {
		case alert := <-ends:
			if !alert {
				t.Fatalf("check %d ended without a close_notify alert", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("check %d: no check connection ended", i)
		}
	}
}
