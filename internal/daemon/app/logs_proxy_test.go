package app

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAccessLogProxiedAndTLS checks the JSON log's fields that only some
// requests have: upstream and upstream_time on proxied requests, tls on TLS
// connections; and that the origin behind a TLS listener is told the
// request came over https (X-Forwarded-Proto, Forwarded proto=).
func TestAccessLogProxiedAndTLS(t *testing.T) {
	ca, cert := serverCert(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s", r.Header.Get("X-Forwarded-Proto"), r.Header.Get("Forwarded"))
	}))
	defer origin.Close()
	up := strings.TrimPrefix(origin.URL, "http://")
	path := filepath.Join(t.TempDir(), "access.log")
	a, _ := runApp(t, fmt.Sprintf(`
workers: 1
servers:
  - name: secure
    listen: ["127.0.0.1:0"]
    tls: { certificates: [{ cert: %s, key: %s }] }
    access_log: { path: %s, format: json }
    routes:
      - { name: up, match: { path: /up }, proxy: { upstreams: ["%s"] } }
      - { name: local, respond: { body: "local" } }
  - name: plain
    listen: ["127.0.0.2:0"]
    access_log: { path: %s, format: json }
    routes:
      - { name: up, proxy: { upstreams: ["%s"] } }
`, cert.Cert, cert.Key, path, up, path, up))
	addrs := a.Addrs()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	fetch := func(url string) string {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	if got := fetch("https://" + addrs["127.0.0.1:0"] + "/up"); !strings.HasPrefix(got, "https|for=127.0.0.1;") || !strings.HasSuffix(got, ";proto=https") {
		t.Errorf("origin behind TLS saw %q, want X-Forwarded-Proto https and Forwarded proto=https", got)
	}
	fetch("https://" + addrs["127.0.0.1:0"] + "/local")
	if got := fetch("http://" + addrs["127.0.0.2:0"] + "/up"); !strings.HasPrefix(got, "http|") || !strings.HasSuffix(got, ";proto=http") {
		t.Errorf("origin behind plain HTTP saw %q", got)
	}
	shutdownNow(t, a)
	type entry struct {
		Server, Route, Upstream, TLS string
		UpstreamTime                 *float64 `json:"upstream_time"`
		Duration                     float64
	}
	var got []entry
	for _, line := range readLines(t, path) {
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got = append(got, e)
	}
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3: %+v", len(got), got)
	}
	for _, e := range got {
		proxied := e.Route == "up"
		wantTLS := map[string]string{"secure": "TLSv1.3", "plain": ""}[e.Server]
		if e.TLS != wantTLS || (e.Upstream == up) != proxied || (e.UpstreamTime != nil) != proxied ||
			(proxied && (*e.UpstreamTime <= 0 || *e.UpstreamTime > e.Duration+1e-6)) {
			t.Errorf("line %+v: want tls %q, upstream %v (%s) with 0 < upstream_time <= duration", e, wantTLS, proxied, up)
		}
	}
}
