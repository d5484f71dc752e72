//go:build linux

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// reloadConfig is the configuration of the reload and upgrade tests: one
// respond route whose body changes between versions.
func reloadConfig(processes int, body string) string {
	return fmt.Sprintf(`workers: 2
processes: %d
log: { format: json }
timeouts: { shutdown_grace: 5s, upgrade_grace: 20s }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: / }
        respond: { status: 200, body: %q, headers: { Content-Type: text/plain } }
`, processes, body)
}

// invalidConfig misspells "body" on line 9, column 33.
func invalidConfig(processes int) string {
	return fmt.Sprintf(`workers: 2
processes: %d
log: { format: json }
timeouts: { shutdown_grace: 5s, upgrade_grace: 20s }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: / }
        respond: { status: 200, bdy: "broken" }
`, processes)
}

// TestReloadUnderLoad sends 20 SIGHUPs that alternate the response body
// between two valid configurations, plus one invalid configuration, while
// wrk (when installed) and a Go client that checks every body load the
// server. No request may fail, the invalid file must be rejected with its
// position and leave the running configuration in place, and a keep-alive
// connection opened before the first reload must still work after the last
// and see the new body.
func TestReloadUnderLoad(t *testing.T) {
	for _, processes := range []int{1, 2} {
		t.Run(fmt.Sprintf("processes=%d", processes), func(t *testing.T) { testReloadUnderLoad(t, processes) })
	}
}

func testReloadUnderLoad(t *testing.T, processes int) {
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, reloadConfig(processes, "zero"))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	if processes > 1 {
		g.waitLog("listening", 1+processes) // the parent's line and one per worker
	}
	url := "http://" + g.addr() + "/"

	kept := dialRaw(t, g.addr())
	if body, _ := kept.roundTrip(t, "/"); body != "zero" {
		t.Fatalf("first body %q", body)
	}
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	load := startGoLoad(ctx, url, 4, func(b string) bool { return b == "zero" || b == "alpha" || b == "bravo" })
	wrk := startWrk(t, url, 16)
	time.Sleep(300 * time.Millisecond) // load before the first reload

	reloaded := 0 // "configuration reloaded" records so far, one per serving process
	body := "zero"
	for i := 1; i <= 20; i++ {
		body = map[bool]string{true: "alpha", false: "bravo"}[i%2 == 1]
		writeConfig(t, cfgPath, reloadConfig(processes, body))
		g.signal(syscall.SIGHUP)
		reloaded += processes
		g.waitLog("configuration reloaded", reloaded)
		if got := get(t, url); got != body {
			t.Fatalf("after reload %d: body %q, want %q", i, got, body)
		}
		if i == 10 {
			writeConfig(t, cfgPath, invalidConfig(processes))
			g.signal(syscall.SIGHUP)
			recs := g.waitLog("reload: invalid configuration", 1)
			pos := regexp.MustCompile("^" + regexp.QuoteMeta(cfgPath) + `:9:33: .*unknown key "bdy" \(did you mean "body"\?\)$`)
			if msg, _ := recs[0]["error"].(string); !pos.MatchString(msg) {
				t.Errorf("invalid configuration logged as %q, want %s", msg, pos)
			}
			g.waitLog("reload failed; the running configuration stays", 1)
			if got := get(t, url); got != body {
				t.Fatalf("after the invalid reload: body %q, want %q (the old configuration)", got, body)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // load after the last reload
	stopLoad()
	wrk.stop(t)
	load.check(t, "go client")
	if got, _ := kept.roundTrip(t, "/"); got != body {
		t.Errorf("connection kept since before the first reload: body %q, want %q", got, body)
	}
	if n := len(g.records("configuration reloaded")); n != 20*processes {
		t.Errorf("%d reloads applied, want %d", n, 20*processes)
	}
	g.signal(syscall.SIGTERM)
	if code := g.wait(30 * time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM:\n%s", code, g.log())
	}
}
