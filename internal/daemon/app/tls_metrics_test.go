package app

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestTLSHandshakeMetrics checks gale_tls_handshakes_total: completed
// handshakes count as ok, a ClientHello that is not one counts as failed.
func TestTLSHandshakeMetrics(t *testing.T) {
	ca, cert := serverCert(t)
	a, addr := startApp(t, fmt.Sprintf(`
workers: 1
admin: { listen: 127.0.0.1:0 }
servers:
  - listen: ["127.0.0.1:0"]
    tls: { certificates: [{ cert: %s, key: %s }] }
    routes:
      - respond: { body: "ok" }
`, cert.Cert, cert.Key))
	admin := &http.Client{Timeout: 10 * time.Second}
	value := func(result string) float64 {
		return metricValue(t, scrape(t, admin, a.AdminAddr()), `gale_tls_handshakes_total{result="`+result+`"}`)
	}
	if ok, failed := value("ok"), value("failed"); ok != 0 || failed != 0 {
		t.Fatalf("before any handshake: ok %v failed %v", ok, failed)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}, DisableKeepAlives: true}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for range 3 {
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	// A handshake record whose body is no ClientHello.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0xff, 0xff, 0xff, 0xff})
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.ReadAll(raw) // the alert, then the close
	raw.Close()
	testkit.WaitFor(t, "the counts", func() bool { return value("ok") == 3 && value("failed") == 1 })
	if v := value("timeout") + value("refused"); v != 0 {
		t.Errorf("timeout+refused = %v, want 0", v)
	}
}
