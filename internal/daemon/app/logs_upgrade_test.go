package app

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestUpgradedRequestsObserved: a WebSocket handshake (101) and an SSE subscription
// (a hijacked 200) are counted in gale_http_requests_total and written to the access
// log when they hand their connection over, and leave the writing connections (they
// used to be neither counted nor logged, and to stay "writing" forever).
func TestUpgradedRequestsObserved(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	a, addr := startApp(t, `
workers: 1
admin: { listen: 127.0.0.1:0 }
servers:
  - name: web
    listen: ["127.0.0.1:0"]
    access_log: { path: `+logPath+`, format: json }
    routes:
      - name: ws
        match: { path: /ws }
        websocket: { echo: true }
      - name: hub
        match: { path: /hub/ }
        pubsub: {}
`)
	ws, _, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	sse, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Close()
	sse.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(sse, "GET /hub/sse/news HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(sse), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("SSE: %v %v", resp, err)
	}
	c := &http.Client{}
	text := scrape(t, c, a.AdminAddr())
	for series, want := range map[string]float64{
		`gale_http_requests_total{code_class="1xx",route="ws",server="web"}`:  1,
		`gale_http_requests_total{code_class="2xx",route="hub",server="web"}`: 1,
		// Only the scrape is in progress; the two open connections are not.
		`gale_connections{state="writing"}`: 1,
		`gale_connections{state="waiting"}`: 2,
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	ws.Close()
	sse.Close()
	shutdownNow(t, a)
	lines := readLines(t, logPath)
	var got []string
	for _, l := range lines {
		var e struct {
			Route  string `json:"route"`
			Path   string `json:"path"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		got = append(got, e.Route+" "+e.Path+" "+http.StatusText(e.Status))
	}
	if s := strings.Join(got, "; "); s != "ws /ws Switching Protocols; hub /hub/sse/news OK" {
		t.Fatalf("logged %q", s)
	}
}
