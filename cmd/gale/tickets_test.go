//go:build linux

package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/gale-server/gale/internal/daemon/shm"
	"github.com/gale-server/gale/internal/testcert"
)

// TestTicketsSharedByProcesses runs gale serve with two worker processes on one
// TLS address: every connection after the first resumes its session whichever
// worker accepts it, and the stats segment shows that both workers served.
func TestTicketsSharedByProcesses(t *testing.T) {
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ca.Issue("a", "localhost", "127.0.0.1")
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, fmt.Sprintf(`workers: 1
processes: 2
log: { format: json }
timeouts: { shutdown_grace: 5s }
servers:
  - listen: ["127.0.0.1:0"]
    tls: { certificates: [{ cert: %s, key: %s }] }
    routes:
      - respond: { status: 200, body: "ok" }
`, f.Cert, f.Key))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	g.waitLog("listening", 3)
	cache := tls.NewLRUClientSessionCache(8)
	const n = 40
	for i := range n {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", ClientSessionCache: cache}}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + g.addr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if string(b) != "ok" || (i > 0) != resp.TLS.DidResume {
			t.Fatalf("connection %d: body %q, resumed %v", i, b, resp.TLS.DidResume)
		}
	}
	rows := waitStats(t, cfgPath, "every request counted", func(r []shm.Row) bool { return shm.Sum(r).Requests == n })
	for _, r := range rows {
		if r.Live && r.Requests == 0 {
			t.Fatalf("worker %d served none of %d connections (SO_REUSEPORT spread): %+v", r.Worker, n, rows)
		}
	}
}
