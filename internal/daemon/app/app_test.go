package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
)

// runApp parses yaml and starts it; the caller shuts it down.
func runApp(t *testing.T, yaml string) (*App, string) {
	t.Helper()
	return runAppLog(t, yaml, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// runAppLog is runApp with the App logging to log.
func runAppLog(t *testing.T, yaml string, log *slog.Logger) (*App, string) {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	for _, v := range a.Addrs() {
		return a, v
	}
	t.Fatal("no listener")
	return nil, ""
}

func startApp(t *testing.T, yaml string) (*App, string) {
	t.Helper()
	return startAppLog(t, yaml, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startAppLog is startApp with the App logging to log.
func startAppLog(t *testing.T, yaml string, log *slog.Logger) (*App, string) {
	t.Helper()
	a, addr := runAppLog(t, yaml, log)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	return a, addr
}

func get(t *testing.T, c *http.Client, method, url, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func TestRoutesMatchInOrder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f.txt"), []byte("file body"), 0o644)
	_, addr := startApp(t, `
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path_exact: /exact }
        respond: { status: 200, body: exact }
      - match: { path: /api, method: [POST] }
        respond: { status: 201, body: api-post }
      - match: { path: /api }
        respond: { status: 200, body: api }
      - match: { host: "*.example.com", path: /h }
        respond: { status: 200, body: wildcard }
      - match: { host: "www.example.org" }
        respond: { status: 200, body: exact-host }
      - match: { path: /files/ }
        static: { root: `+dir+` }
`)
	c := &http.Client{}
	base := "http://" + addr
	cases := []struct {
		method, path, host string
		status             int
		body               string
	}{
		{"GET", "/exact", "", 200, "exact"},
		{"GET", "/exact/more", "", 404, ""},
		{"POST", "/api/x", "", 201, "api-post"},
		{"GET", "/api/x", "", 200, "api"},
		{"GET", "/h", "a.example.com:80", 200, "wildcard"},
		{"GET", "/h", "example.com", 404, ""},
		{"GET", "/any", "WWW.example.org", 200, "exact-host"},
		{"GET", "/files/f.txt", "", 200, "file body"},
		{"GET", "/nothing", "", 404, ""},
	}
	for _, tc := range cases {
		st, b := get(t, c, tc.method, base+tc.path, tc.host)
		if st != tc.status || (tc.body != "" && b != tc.body) {
			t.Errorf("%s %s host %q: %d %q, want %d %q", tc.method, tc.path, tc.host, st, b, tc.status, tc.body)
		}
	}
}

// TestReloadKeepsConnections swaps the routes while a keep-alive connection is open:
// the connection stays up and its next request sees the new response.
func TestReloadKeepsConnections(t *testing.T) {
	conf := func(body string) string {
		return `
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - respond: { status: 200, body: ` + body + ` }
`
	}
	a, addr := startApp(t, conf("one"))
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	dials := 0
	tr.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		dials++
		return (&net.Dialer{}).DialContext(ctx, network, address)
	}
	c := &http.Client{Transport: tr}
	if _, b := get(t, c, "GET", "http://"+addr+"/", ""); b != "one" {
		t.Fatalf("before reload: %q", b)
	}
	// The reloaded config lists the bound address so that the listener is kept.
	next, err := config.Parse("next.yaml", []byte(strings.Replace(conf("two"), "127.0.0.1:0", "127.0.0.1:0", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if _, b := get(t, c, "GET", "http://"+addr+"/", ""); b != "two" {
		t.Fatalf("after reload: %q", b)
	}
	if dials != 1 {
		t.Fatalf("reload cost the keep-alive connection: %d dials", dials)
	}
}
