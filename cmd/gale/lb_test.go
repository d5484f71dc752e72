//go:build linux

package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/daemon/supervisor"
)

// TestLeastConnAcrossProcesses runs two worker processes in front of a
// holding origin and a free one with balance: least_conn. While one request
// is held at the first origin, no request through either worker goes there:
// the in-flight count lives in the load table every worker maps. The table is
// removed when the instance stops.
func TestLeastConnAcrossProcesses(t *testing.T) {
	bin, _ := galeBinary(t)
	release := make(chan struct{})
	var held, free atomic.Int64
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if held.Add(1) == 1 { // only the first is held; a wrong pick answers at once
			select {
			case <-release:
			case <-time.After(30 * time.Second):
			}
		}
		fmt.Fprint(w, "held")
	}))
	defer hold.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		free.Add(1)
		fmt.Fprint(w, "free")
	}))
	defer other.Close()
	defer close(release)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, fmt.Sprintf(`workers: 1
processes: 2
log: { format: json }
timeouts: { shutdown_grace: 2s }
upstreams:
  app:
    servers: [%q, %q]
    balance: least_conn
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: app }
`, strings.TrimPrefix(hold.URL, "http://"), strings.TrimPrefix(other.URL, "http://")))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	g.waitLog("listening", 2)
	url := "http://" + g.addr() + "/"

	// The first request goes to the holding origin (every count at zero, the
	// scan starts at the first server) and stays in flight.
	go func() {
		c := &http.Client{Timeout: 40 * time.Second}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for held.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first request never reached the holding origin")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// New connections spread over both workers (SO_REUSEPORT); each must see
	// the other worker's request in flight.
	for i := range 20 {
		if body := get(t, url); body != "free" {
			t.Fatalf("request %d went to %q while the holding origin had a request in flight", i, body)
		}
	}
	if held.Load() != 1 || free.Load() != 20 {
		t.Errorf("origins got %d and %d requests, want 1 and 20", held.Load(), free.Load())
	}
	tables, _ := filepath.Glob(supervisor.StatsPathForFile(cfgPath) + ".lb-*")
	if len(tables) != 1 {
		t.Errorf("load tables %v, want one", tables)
	}
	release <- struct{}{}
	g.signal(syscall.SIGTERM)
	if code := g.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, g.log())
	}
	if left, _ := filepath.Glob(supervisor.StatsPathForFile(cfgPath) + ".lb-*"); len(left) != 0 {
		t.Errorf("load tables left after the stop: %v", left)
	}
}
