package app

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestFeatureLinesGoThroughTheAppLogger: the proxy's line for a failed exchange
// goes through the logger the App was given (a worker's carries worker=N and the
// configured format), not slog.Default, which the command never sets: such lines
// left in another format without the worker's name. The file server's and
// dynamic upstreams' lines take the same logger (actionEnv.log).
func TestFeatureLinesGoThroughTheAppLogger(t *testing.T) {
	var lb testkit.SyncBuffer
	log := slog.New(slog.NewTextHandler(&lb, nil)).With("worker", 7)
	dead := testkit.FreePort(t)
	_, addr := startAppLog(t, fmt.Sprintf(`
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /up/ }
        proxy: { upstreams: ["%s"] }
`, dead), log)
	hc := &http.Client{Timeout: 10 * time.Second}
	for path, want := range map[string]int{"/up/x": 502} {
		resp, err := hc.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	var text string
	testkit.WaitFor(t, "the proxy's line in the App's log", func() bool {
		text += lb.Take()
		return strings.Contains(text, "upstream request failed")
	})
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.Contains(line, "upstream request failed") && !strings.Contains(line, "worker=7") {
			t.Errorf("line without the App logger's attributes: %s", line)
		}
	}
}
