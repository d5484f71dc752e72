//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/daemon/shm"
	"github.com/gale-server/gale/internal/testkit"
)

// TestACMESharedByProcesses runs `gale serve` with processes: 2 against Pebble:
// one worker orders the certificate (the CA's TLS-ALPN-01 validations reach
// either worker, which answer from the storage directory), the other loads it
// from disk, and every connection, whichever worker accepts it, verifies.
func TestACMESharedByProcesses(t *testing.T) {
	bin, _ := galeBinary(t)
	httpPort, tlsPort := testkit.FreePortNumber(t), testkit.FreePortNumber(t)
	p := testkit.StartPebble(t, httpPort, tlsPort)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	tlsAddr := "127.0.0.1:" + strconv.Itoa(tlsPort)
	writeConfig(t, cfgPath, fmt.Sprintf(`workers: 1
processes: 2
log: { format: json }
timeouts: { shutdown_grace: 5s }
servers:
  - listen: [%q]
    tls:
      acme: { ca: %q, ca_root: %q, domains: [w.gale.test], storage: %q, challenges: [tls-alpn-01], poll: 50ms, retry_min: 200ms }
    routes:
      - respond: { status: 200, body: "ok" }
`, tlsAddr, p.Directory, p.CAFile, filepath.Join(dir, "acme")))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	g.waitLog("listening", 3)
	// An order takes a few seconds, more on a loaded machine: a longer wait than
	// waitLog's.
	for deadline := time.Now().Add(90 * time.Second); len(g.records("acme: certificate loaded")) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the workers did not both load a certificate within 90 s:\n%s", g.log())
		}
	}
	g.waitLog("acme: certificate obtained", 1) // each worker loads it, the one that ordered too
	roots := p.Roots(t)
	const n = 40
	for i := range n {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "w.gale.test"},
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", tlsAddr)
			}}
		resp, err := (&http.Client{Transport: tr}).Get("https://w.gale.test/")
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if string(b) != "ok" {
			t.Fatalf("connection %d: body %q", i, b)
		}
	}
	rows := waitStats(t, cfgPath, "every request counted", func(r []shm.Row) bool { return shm.Sum(r).Requests == n })
	for _, r := range rows {
		if r.Live && r.Requests == 0 {
			t.Fatalf("worker %d served none of %d connections: %+v", r.Worker, n, rows)
		}
	}
	t.Logf("failed orders before success: %d", len(g.records("acme: order failed")))
	if got := len(g.records("acme: certificate obtained")); got != 1 {
		t.Fatalf("%d orders by the workers, want 1:\n%s", got, g.log())
	}
}
