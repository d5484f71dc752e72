package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// chromium returns the headless browser, or skips the test without one
// (scripts/test.sh installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (scripts/test.sh installs it)")
	return ""
}

// runChromium loads url headless with a virtual time budget (the page's
// one-second polls run without waiting in real time) and returns stdout.
func runChromium(t *testing.T, bin string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=6000"}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// domNumber returns the number shown in the element with id (commas
// removed).
func domNumber(t *testing.T, dom, id string) float64 {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `"[^>]*>([0-9,.]+)<`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no number in #%s:\n%s", id, dom)
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitRequests polls the status document at url until its requests counter
// reaches n, failing the test after 30 seconds.
func waitRequests(t *testing.T, url string, n float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var doc struct {
			Requests float64 `json:"requests"`
		}
		resp, err := http.Get(url)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
		}
		if err == nil && doc.Requests >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: requests = %v after 30 s (err %v), want %v", url, doc.Requests, err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStatusPageInChromium loads /status in headless Chromium against a gale
// under load and checks that the page polled several times, shows a non-zero
// request rate and totals, drew its charts and filled the route table. A
// screenshot is written to the test's temporary directory (or to
// $GALE_ARTIFACTS when set).
func TestStatusPageInChromium(t *testing.T) {
	bin := chromium(t)
	a, addr := startApp(t, adminConfig)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{}
			deadline := time.Now().Add(2 * time.Minute)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				resp, err := c.Get("http://" + addr + "/hello")
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	defer func() {
		stop()
		wg.Wait()
	}()
	// Chromium runs on virtual time, so its polls come close together in
	// real time: start it only once the load is being counted.
	waitRequests(t, "http://"+a.AdminAddr()+"/status.json", 200)
	url := "http://" + a.AdminAddr() + "/status"
	dom := runChromium(t, bin, "--dump-dom", url)
	if n := domNumber(t, dom, "polls"); n < 3 {
		t.Fatalf("the page polled %v times, want at least 3:\n%s", n, dom)
	}
	if rps := domNumber(t, dom, "rps"); rps <= 0 {
		t.Errorf("requests/s = %v under load", rps)
	}
	if n := domNumber(t, dom, "requests"); n <= 0 {
		t.Errorf("requests = %v", n)
	}
	if m := regexp.MustCompile(`id="chart-rps" data-points="(\d+)"`).FindStringSubmatch(dom); m == nil || m[1] == "0" || m[1] == "1" {
		t.Errorf("the requests chart has no line: %v", m)
	}
	if !strings.Contains(dom, "<td>web</td><td class=\"l\">hello</td>") {
		t.Errorf("the route table has no row for web/hello:\n%s", dom)
	}
	if !strings.Contains(dom, `id="state" class="ok"`) {
		t.Errorf("the page is not live:\n%s", dom)
	}
	dir := os.Getenv("GALE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "status-page.png")
	runChromium(t, bin, "--hide-scrollbars", "--window-size=1280,1100", "--screenshot="+shot, url)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)
}
