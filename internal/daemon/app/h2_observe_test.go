package app

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestH2RequestsObserved: requests on HTTP/2 streams are counted by the route metrics
// and written to the access log like HTTP/1.1 ones (route, status, bytes; proto "h2"),
// including those no route matches.
func TestH2RequestsObserved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	a, addr := runApp(t, `
workers: 2
admin:
  listen: 127.0.0.1:0
  metrics: { buckets: [1ms, 100ms, 1s] }
servers:
  - name: web
    listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    access_log: { path: `+path+`, format: json }
    routes:
      - name: hello
        match: { path: /hello }
        respond: { body: hi }
`)
	c := h2c(t)
	for range 5 {
		do(t, c, "GET", "http://"+addr+"/hello")
	}
	do(t, c, "GET", "http://"+addr+"/nowhere")
	h1 := &http.Client{}
	get(t, h1, "GET", "http://"+addr+"/hello", "")
	text := scrape(t, h1, a.AdminAddr())
	for series, v := range map[string]float64{
		`gale_http_requests_total{code_class="2xx",route="hello",server="web"}`: 6,
		`gale_http_request_duration_seconds_count{route="hello",server="web"}`:  6,
		`gale_http_requests_total{code_class="4xx",route="none",server="web"}`:  1,
	} {
		if got := metricValue(t, text, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	c.CloseIdleConnections()
	shutdownNow(t, a)
	lines := readLines(t, path)
	protos := map[string]int{}
	for _, line := range lines {
		var e struct {
			Route, Path, Proto string
			Status             int
			Bytes              int64
			Time               time.Time
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		protos[e.Proto]++
		if e.Proto == "h2" && e.Path == "/hello" && (e.Route != "hello" || e.Status != 200 || e.Bytes != 2) {
			t.Errorf("h2 line %q", line)
		}
	}
	if protos["h2"] != 6 || protos["h1"] < 1 {
		t.Fatalf("access log protocols %v (want 6 h2 lines and the h1 ones)\n%v", protos, lines)
	}
}
