package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/daemon/shm"
	"github.com/gale-server/gale/internal/testkit"
)

// TestLeastConnAcrossWorkers: two Apps attached to one stats path as two
// worker slots (what two worker processes of an instance are) share
// least_conn's in-flight counts: while requests through worker 0 hold origin
// 0, requests through worker 1 go to origin 1.
func TestLeastConnAcrossWorkers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("shared load tables need the Linux shared-memory segment")
	}
	release := make(chan struct{})
	var held, other atomic.Int64
	hold := origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held.Add(1)
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
		fmt.Fprint(w, "held")
	}))
	free := origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		other.Add(1)
		fmt.Fprint(w, "free")
	}))
	defer close(release)
	stats := filepath.Join(t.TempDir(), "gale-test.stats")
	t.Cleanup(func() { shm.RemoveLoadTables(stats) })
	yaml := fmt.Sprintf(`
workers: 1
upstreams:
  app:
    servers: [%q, %q]
    balance: least_conn
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: app }
`, hold, free)
	start := func(slot int) string {
		cfg, err := config.Parse("test.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewWithOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{StatsPath: stats, StatsSlot: slot})
		if err != nil {
			t.Fatal(err)
		}
		a.Start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a.Shutdown(ctx)
		})
		for _, v := range a.Addrs() {
			return "http://" + v + "/"
		}
		t.Fatal("no listener")
		return ""
	}
	w0, w1 := start(0), start(1)
	c := &http.Client{Timeout: 30 * time.Second}
	// A request through worker 0 goes to the holding origin (both at zero, the
	// scan starts at the first) and stays in flight.
	go c.Get(w0)
	testkit.WaitFor(t, "a request held at origin 0", func() bool { return held.Load() == 1 })
	for i := range 10 {
		resp, err := c.Get(w1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "free" {
			t.Fatalf("request %d through worker 1 went to %q: worker 0's in-flight request was not counted", i, b)
		}
	}
	if held.Load() != 1 || other.Load() != 10 {
		t.Errorf("origins got %d and %d requests, want 1 and 10", held.Load(), other.Load())
	}
}

// origin starts a net/http origin and returns its ip:port.
func origin(t *testing.T, h http.Handler) string {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}
