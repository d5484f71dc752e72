package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/metrics"
)

const adminConfig = `
workers: 2
admin:
  listen: 127.0.0.1:0
  metrics: { buckets: [1ms, 100ms, 1s] }
servers:
  - name: web
    listen: ["127.0.0.1:0"]
    routes:
      - name: hello
        match: { path: /hello }
        respond: { body: hi }
      - match: { path: /missing }
        respond: { status: 404 }
`

// scrape fetches /metrics and returns its text, checked by promtool when
// it is installed (scripts/test.sh installs it).
func scrape(t *testing.T, c *http.Client, admin string) string {
	t.Helper()
	code, body := get(t, c, "GET", "http://"+admin+"/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	if path, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(path, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s\n%s", err, out, body)
		}
	} else {
		t.Log("promtool not installed: the format is not checked")
	}
	return body
}

// metricValue returns the value of the series written exactly as series.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, series+" ") {
			v, err := strconv.ParseFloat(strings.TrimPrefix(line, series+" "), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no series %s in\n%s", series, text)
	return 0
}

func TestMetricsMoveWithRequests(t *testing.T) {
	a, addr := startApp(t, adminConfig)
	admin := a.AdminAddr()
	if admin == "" {
		t.Fatal("no admin listener")
	}
	c := &http.Client{}
	for round, n := range []int{3, 7} {
		for i := 0; i < n; i++ {
			get(t, c, "GET", "http://"+addr+"/hello", "")
		}
		get(t, c, "GET", "http://"+addr+"/missing", "")
		get(t, c, "GET", "http://"+addr+"/nowhere", "")
		text := scrape(t, c, admin)
		want := float64(3)
		if round == 1 {
			want = 10
		}
		for series, v := range map[string]float64{
			`gale_http_requests_total{code_class="2xx",route="hello",server="web"}`:           want,
			`gale_http_request_duration_seconds_count{route="hello",server="web"}`:            want,
			`gale_http_request_duration_seconds_bucket{route="hello",server="web",le="+Inf"}`: want,
			`gale_http_requests_total{code_class="4xx",route="route1",server="web"}`:          float64(round + 1),
			`gale_http_requests_total{code_class="4xx",route="none",server="web"}`:            float64(round + 1),
		} {
			if got := metricValue(t, text, series); got != v {
				t.Errorf("round %d: %s = %v, want %v", round, series, got, v)
			}
		}
		if got := metricValue(t, text, "gale_connections_accepted_total"); got < 1 {
			t.Errorf("accepted = %v", got)
		}
		if got := metricValue(t, text, "gale_received_bytes_total"); got <= 0 {
			t.Errorf("bytes in = %v", got)
		}
		if got := metricValue(t, text, "gale_event_loops"); got != 2 {
			t.Errorf("loops = %v, want 2", got)
		}
		// The scrape's own connection is writing (its request is in progress).
		if got := metricValue(t, text, `gale_connections{state="writing"}`); got < 1 {
			t.Errorf("writing = %v, want at least the scrape itself", got)
		}
	}
}

func TestBadRequestsCounted(t *testing.T) {
	a, addr := startApp(t, adminConfig)
	if code := rawGet(t, addr, "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"); code != 400 {
		t.Fatalf("status %d, want 400", code)
	}
	if got := metricValue(t, scrape(t, &http.Client{}, a.AdminAddr()), "gale_http_bad_requests_total"); got != 1 {
		t.Fatalf("bad requests = %v, want 1", got)
	}
}

func TestAdminEndpoints(t *testing.T) {
	a, addr := startApp(t, adminConfig)
	c := &http.Client{}
	get(t, c, "GET", "http://"+addr+"/hello", "")
	base := "http://" + a.AdminAddr()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/status": 200, "/nope": 404} {
		if code, body := get(t, c, "GET", base+path, ""); code != want {
			t.Errorf("%s: %d %q, want %d", path, code, body, want)
		}
	}
	if code, _ := get(t, c, "POST", base+"/metrics", ""); code != 405 {
		t.Errorf("POST /metrics: %d, want 405", code)
	}
	_, body := get(t, c, "GET", base+"/status.json", "")
	var st metrics.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if st.Requests < 1 || st.Processes != 1 || len(st.Loops) != 2 || len(st.Routes) != 3 {
		t.Fatalf("status = %+v", st)
	}
	if !strings.Contains(body, `"reloads":[]`) {
		t.Errorf("status.json before any reload: want \"reloads\":[] (a list, not null) in %s", body)
	}
	if err := a.Reload(a.cfg); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, c, "GET", base+"/status.json", "")
	st = metrics.Status{}
	json.Unmarshal([]byte(body), &st)
	if len(st.Reloads) != 1 || !st.Reloads[0].OK {
		t.Fatalf("reloads = %+v", st.Reloads)
	}
}

func TestAdminToken(t *testing.T) {
	a, _ := startApp(t, strings.Replace(adminConfig, "listen: 127.0.0.1:0\n", "listen: 127.0.0.1:0\n  token: 0123456789abcdef0123\n", 1))
	url := "http://" + a.AdminAddr() + "/metrics"
	for _, h := range []string{"", "Bearer wrong-token-of-some-size", "Basic 0123456789abcdef0123"} {
		req, _ := http.NewRequest("GET", url, nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: %d, want 401 with a challenge", h, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(b.String(), "gale_build_info") {
		t.Fatalf("with the token: %d %s", resp.StatusCode, fmt.Sprint(b.Len()))
	}
}

// TestConnectionStates holds one connection with half a request head and
// one idle keep-alive connection, and checks the gauges nginx's
// stub_status would show.
func TestConnectionStates(t *testing.T) {
	a, addr := startApp(t, adminConfig)
	partial, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer partial.Close()
	partial.Write([]byte("GET /hello HTTP/1.1\r\nHost: x\r\n"))
	idle := &http.Client{}
	get(t, idle, "GET", "http://"+addr+"/hello", "") // stays open, idle
	scraper := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		text := scrape(t, scraper, a.AdminAddr())
		r := metricValue(t, text, `gale_connections{state="reading"}`)
		w := metricValue(t, text, `gale_connections{state="writing"}`)
		i := metricValue(t, text, `gale_connections{state="waiting"}`)
		if r == 1 && w == 1 && i == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reading %v writing %v waiting %v, want 1 each (the partial head, the scrape, the idle connection)", r, w, i)
		}
		time.Sleep(10 * time.Millisecond)
	}
	partial.Write([]byte("\r\n"))
	if _, err := http.ReadResponse(bufio.NewReader(partial), nil); err != nil {
		t.Fatal(err)
	}
	for {
		text := scrape(t, scraper, a.AdminAddr())
		if metricValue(t, text, `gale_connections{state="reading"}`) == 0 && metricValue(t, text, `gale_connections{state="waiting"}`) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the head completed:\n%s", text)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReloadKeepsRouteCounters reloads a config that keeps the route's name
// and adds one: the kept route counts on from where it was.
func TestReloadKeepsRouteCounters(t *testing.T) {
	a, addr := startApp(t, adminConfig)
	c := &http.Client{}
	for i := 0; i < 4; i++ {
		get(t, c, "GET", "http://"+addr+"/hello", "")
	}
	next, err := config.Parse("test.yaml", []byte(strings.Replace(adminConfig, "      - match: { path: /missing }",
		"      - name: added\n        match: { path: /added }\n        respond: {}\n      - match: { path: /missing }", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	get(t, c, "GET", "http://"+addr+"/hello", "")
	get(t, c, "GET", "http://"+addr+"/added", "")
	text := scrape(t, c, a.AdminAddr())
	if got := metricValue(t, text, `gale_http_requests_total{code_class="2xx",route="hello",server="web"}`); got != 5 {
		t.Errorf("hello = %v after the reload, want 5", got)
	}
	if got := metricValue(t, text, `gale_http_requests_total{code_class="2xx",route="added",server="web"}`); got != 1 {
		t.Errorf("added = %v, want 1", got)
	}
}
