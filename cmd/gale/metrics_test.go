//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/daemon/shm"
)

// adminProcessConfig is processConfig with the admin listener on.
func adminProcessConfig(processes int, extra string) string {
	return fmt.Sprintf(`workers: 1
processes: %d
log: { format: json }
timeouts: { idle: 5m, shutdown_grace: 5s }
admin: { listen: "127.0.0.1:0" }
servers:
  - name: web
    listen: ["127.0.0.1:0"]
%s    routes:
      - name: ok
        match: { path: / }
        respond: { status: 200, body: "ok" }
`, processes, extra)
}

// scrapeValue fetches /metrics on a new connection and returns the value of
// series (0 when absent).
func scrapeValue(t *testing.T, admin, series string) float64 {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// startAdminGale starts an instance of two worker processes with the admin
// listener (extra goes into the server's mapping) and returns it with its
// configuration file.
func startAdminGale(t *testing.T, extra string) (*galeProc, string) {
	t.Helper()
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, adminProcessConfig(2, extra))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	g.waitLog("listening", 2)
	return g, cfgPath
}

// TestMetricsSummedOverProcesses serves requests with two worker processes
// (SO_REUSEPORT spreads fresh connections over both) and checks that a
// scrape answered by either process reports the instance's total.
func TestMetricsSummedOverProcesses(t *testing.T) {
	g, cfgPath := startAdminGale(t, "")
	admin := g.waitLog("admin listening", 2)[0]["addr"].(string)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	const n = 40
	for i := 0; i < n; i++ {
		resp, err := c.Get("http://" + g.addr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	rows := waitStats(t, cfgPath, "40 requests", func(r []shm.Row) bool { return shm.Sum(r).Requests == n })
	for _, r := range rows {
		if r.Requests == 0 {
			t.Fatalf("worker %d served nothing; the test needs both: %+v", r.Worker, rows)
		}
	}
	series := `gale_http_requests_total{code_class="2xx",route="ok",server="web"}`
	deadline := time.Now().Add(30 * time.Second)
	for scrapes := 0; scrapes < 10; {
		if got := scrapeValue(t, admin, series); got == n {
			scrapes++
			continue
		} else if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %d", series, got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := scrapeValue(t, admin, "gale_worker_processes"); got != 2 {
		t.Errorf("gale_worker_processes = %v, want 2", got)
	}
	if got := scrapeValue(t, admin, "gale_event_loops"); got != 2 {
		t.Errorf("gale_event_loops = %v, want 2", got)
	}
	g.signal(syscall.SIGTERM)
	if code := g.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, g.log())
	}
}

// countLines returns the number of lines in path (0 when it is missing).
func countLines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// TestAccessLogReopenOnSIGUSR1 rotates the access log as logrotate does
// (rename, then SIGUSR1 to the supervisor, which forwards it to both
// workers) right after ten requests, while their lines may still wait in the
// loops' buffers or the writer's queue: every line of a request answered
// before the signal ends in the renamed file, later ones in a new file at the
// configured path, and the stop writes the rest. Lines still buffered used to
// go to the new file.
func TestAccessLogReopenOnSIGUSR1(t *testing.T) {
	g, cfgPath := startAdminGale(t, "    access_log: { path: access.log, format: json }\n")
	logPath := filepath.Join(filepath.Dir(cfgPath), "access.log")
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	hit := func(n int) {
		for i := 0; i < n; i++ {
			resp, err := c.Get("http://" + g.addr() + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	hit(10)
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	g.signal(syscall.SIGUSR1)
	g.waitLog("access logs reopened", 2)
	hit(7)
	g.signal(syscall.SIGTERM)
	if code := g.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, g.log())
	}
	if got := countLines(logPath + ".1"); got != 10 {
		t.Errorf("rotated file has %d lines, want 10", got)
	}
	if got := countLines(logPath); got != 7 {
		t.Errorf("new file has %d lines, want 7", got)
	}
}

// TestStatusWatch runs gale status --watch --count 3 against an instance of
// two worker processes under load: three frames, whose request totals grow,
// with the route's row and a rate. The interval is a second, several of the
// workers' publishing rounds, so that a loaded machine (the client stalled for
// a few hundred milliseconds) still moves every frame.
func TestStatusWatch(t *testing.T) {
	g, cfgPath := startAdminGale(t, "")
	bin, _ := galeBinary(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &http.Client{}
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			if resp, err := c.Get("http://" + g.addr() + "/"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	out, err := exec.Command(bin, "status", "-c", cfgPath, "--watch", "--interval", "1s", "--count", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("gale status --watch: %v\n%s", err, out)
	}
	text := string(out)
	if strings.Contains(text, "\x1b[") {
		t.Errorf("escape codes written to a pipe:\n%q", text)
	}
	frames := strings.Split(text, "\ngale ")
	if len(frames) != 3 {
		t.Fatalf("%d frames, want 3:\n%s", len(frames), text)
	}
	var last uint64
	for i, f := range frames {
		var reqs uint64
		var perSec float64
		lines := strings.Split(f, "\n")
		if len(lines) < 2 {
			t.Fatalf("frame %d: %q", i, f)
		}
		if _, err := fmt.Sscanf(lines[1], "requests %d (%f/s)", &reqs, &perSec); err != nil {
			t.Fatalf("frame %d line %q: %v", i, lines[1], err)
		}
		if reqs <= last || perSec <= 0 {
			t.Errorf("frame %d: %d requests at %v/s after %d", i, reqs, perSec, last)
		}
		last = reqs
		if !regexp.MustCompile(`(?m)^\s*web\s+ok\s+\d+\s+[1-9]\d*\s`).MatchString(f) {
			t.Errorf("frame %d has no moving row for web/ok:\n%s", i, f)
		}
	}
}

// TestStatusStartedIsTheInstances kills one of two worker processes and checks
// that /status.json's started (the status page's uptime) stays the instance's
// start whichever worker answers, the replacement included: it was each
// process's own start, so the uptime shown went back to zero when a restarted
// worker answered and flipped between the workers' as polls alternated.
func TestStatusStartedIsTheInstances(t *testing.T) {
	g, cfgPath := startAdminGale(t, "")
	admin := g.waitLog("admin listening", 2)[0]["addr"].(string)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	started := func() string {
		resp, err := c.Get("http://" + admin + "/status.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct {
			Started string `json:"started"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.Started == "" {
			t.Fatalf("/status.json: started %q, %v", st.Started, err)
		}
		return st.Started
	}
	want := started()
	rows := waitStats(t, cfgPath, "two workers", func(r []shm.Row) bool { return len(running(r)) == 2 })
	victim := running(rows)[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitStats(t, cfgPath, "a replacement for worker 0", func(r []shm.Row) bool {
		p := running(r)
		return len(p) == 2 && p[0] != victim && p[0] != 0
	})
	g.waitLog("admin listening", 3)
	// Fresh connections spread over both workers (SO_REUSEPORT): 30 miss the
	// replacement with a chance of one in 2^30.
	for range 30 {
		if got := started(); got != want {
			t.Fatalf("started %s, want the instance's %s", got, want)
		}
	}
	g.signal(syscall.SIGTERM)
	if code := g.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, g.log())
	}
}

// TestStatusListsRefusedReload sends SIGHUP to a gale whose file no longer
// validates, with one process and with two worker processes (whose parent
// refuses the file): /status.json's reloads list it as failed with the error
// and its file:line:column, whichever process answers, as they list a reload
// whose apply failed. A file refused as invalid was only logged, so the status
// page showed no failed reload for the most common mistake.
func TestStatusListsRefusedReload(t *testing.T) {
	for _, processes := range []int{1, 2} {
		t.Run(strconv.Itoa(processes), func(t *testing.T) { statusListsRefusedReload(t, processes) })
	}
}

func statusListsRefusedReload(t *testing.T, processes int) {
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	good := adminProcessConfig(processes, "")
	writeConfig(t, cfgPath, good)
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	admin := g.waitLog("admin listening", processes)[0]["addr"].(string)
	writeConfig(t, cfgPath, good+"bogus_key: 1\n")
	g.signal(syscall.SIGHUP)
	g.waitLog("reload failed; the running configuration stays", 1)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	// Fresh connections spread over the workers: 20 in a row must list it.
	for listed := 0; listed < 20; {
		resp, err := c.Get("http://" + admin + "/status.json")
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Reloads []struct {
				OK    bool   `json:"ok"`
				Error string `json:"error"`
			} `json:"reloads"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(st.Reloads); n == 1 && !st.Reloads[0].OK && strings.Contains(st.Reloads[0].Error, `gale.yaml:`) && strings.Contains(st.Reloads[0].Error, "bogus_key") {
			listed++
			continue
		}
		if listed > 0 || time.Now().After(deadline) {
			t.Fatalf("after %d answers listing it: reloads %+v, want one failed with the file's error", listed, st.Reloads)
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.signal(syscall.SIGTERM)
	if code := g.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, g.log())
	}
}
