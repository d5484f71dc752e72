//go:build linux

package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestHealthChecksOncePerInstance runs two worker processes with a tcp health
// check on one upstream: the origin sees one checker's connections (about one
// per interval), not one per process, and one process logs that it runs them.
func TestHealthChecksOncePerInstance(t *testing.T) {
	var conns atomic.Int64
	origin := testkit.Serve(t, func(c *net.TCPConn) { conns.Add(1) })
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, fmt.Sprintf(`workers: 1
processes: 2
log: { format: json }
upstreams:
  app:
    servers: ["%s"]
    health_check: { type: tcp, interval: 100ms, timeout: 100ms }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: app }
`, origin))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	g.waitLog("listening", 2)
	// The proxy and health log through slog's default logger (text), not the
	// configured JSON one: the line is found in the raw log.
	testkit.WaitFor(t, "a process to take the checks", func() bool {
		return strings.Count(g.log(), "health: this process runs the group's checks") > 0
	})
	time.Sleep(500 * time.Millisecond)
	c0, t0 := conns.Load(), time.Now()
	time.Sleep(3 * time.Second)
	rate := float64(conns.Load()-c0) / time.Since(t0).Seconds()
	if rate > 15 || rate < 3 {
		t.Fatalf("the origin saw %.1f check connections per second; one checker at 100ms makes about 10, two about 20", rate)
	}
	if n := strings.Count(g.log(), "health: this process runs the group's checks"); n != 1 {
		t.Fatalf("%d processes run the checks:\n%s", n, g.log())
	}
	t.Logf("%.1f checks per second", rate)
}
