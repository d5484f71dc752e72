package app

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// logApp starts an app whose server writes its access log to a file in
// dir; the test shuts it down (to see the shutdown flush).
func logApp(t *testing.T, dir, format string) (*App, string, string) {
	t.Helper()
	path := filepath.Join(dir, "access.log")
	a, addr := runApp(t, `
workers: 2
admin: { listen: 127.0.0.1:0 }
servers:
  - name: web
    listen: ["127.0.0.1:0"]
    access_log: { path: `+path+`, format: `+format+` }
    routes:
      - name: hello
        match: { path: /hello }
        respond: { body: "hello!" }
`)
	return a, addr, path
}

func shutdownNow(t *testing.T, a *App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// TestAccessLogJSONEveryRequest makes N requests and shuts down at once:
// the log has N lines (the last ones written by the shutdown flush, before
// any periodic flush) with the documented fields.
func TestAccessLogJSONEveryRequest(t *testing.T) {
	a, addr, path := logApp(t, t.TempDir(), "json")
	c := &http.Client{}
	const n = 50
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest("GET", "http://"+addr+"/hello?i=1", nil)
		req.Header.Set("User-Agent", "gale-test/1")
		req.Header.Set("Referer", "http://ref/\"x\"")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get(t, c, "GET", "http://"+addr+"/nowhere", "")
	shutdownNow(t, a)
	lines := readLines(t, path)
	if len(lines) != n+1 {
		t.Fatalf("%d lines, want %d", len(lines), n+1)
	}
	for i, line := range lines {
		var e struct {
			Time      time.Time `json:"time"`
			Remote    string    `json:"remote"`
			Server    string    `json:"server"`
			Route     string    `json:"route"`
			Method    string    `json:"method"`
			Path      string    `json:"path"`
			Host      string    `json:"host"`
			Proto     string    `json:"proto"`
			Status    int       `json:"status"`
			Bytes     int64     `json:"bytes"`
			Duration  *float64  `json:"duration"`
			Referer   string    `json:"referer"`
			UserAgent string    `json:"user_agent"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		want := "GET /hello?i=1 200 6 hello gale-test/1"
		got := strings.Join([]string{e.Method, e.Path, itoa(e.Status), itoa(int(e.Bytes)), e.Route, e.UserAgent}, " ")
		if i == n {
			want, got = "GET /nowhere 404 none", strings.Join([]string{e.Method, e.Path, itoa(e.Status), e.Route}, " ")
		}
		if got != want || e.Remote != "127.0.0.1" || e.Server != "web" || e.Proto != "h1" || e.Duration == nil ||
			time.Since(e.Time) > time.Minute || e.Host != addr || (i < n && e.Referer != `http://ref/"x"`) {
			t.Fatalf("line %d: %s\nparsed %+v", i, line, e)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestAccessLogCombined(t *testing.T) {
	a, addr, path := logApp(t, t.TempDir(), "combined")
	req, _ := http.NewRequest("GET", "http://"+addr+"/hello", nil)
	req.Header.Set("User-Agent", `agent "quoted"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	shutdownNow(t, a)
	lines := readLines(t, path)
	re := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /hello HTTP/1\.1" 200 6 "-" "agent \\x22quoted\\x22"$`)
	if len(lines) != 1 || !re.MatchString(lines[0]) {
		t.Fatalf("lines %q", lines)
	}
}

// TestAccessLogMetrics checks the lines counter in /metrics.
func TestAccessLogMetrics(t *testing.T) {
	a, addr, _ := logApp(t, t.TempDir(), "json")
	defer shutdownNow(t, a)
	c := &http.Client{}
	for i := 0; i < 3; i++ {
		get(t, c, "GET", "http://"+addr+"/hello", "")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		text := scrape(t, c, a.AdminAddr())
		if metricValue(t, text, `gale_access_log_lines_total{server="web"}`) == 3 {
			if d := metricValue(t, text, `gale_access_log_dropped_total{server="web"}`); d != 0 {
				t.Fatalf("dropped %v", d)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lines never reached 3:\n%s", text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
