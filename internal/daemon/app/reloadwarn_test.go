package app

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/internal/testkit"
)

// TestReloadWarnsAboutRestartOnlySettings: a reload that changes settings
// the running server keeps until a restart (limits, connection timeouts,
// log.format) applies the rest and names those keys in a warning, instead of
// leaving the operator to believe they are in force; the old body limit
// indeed still refuses a larger body. A reload back to the values the server
// was built with warns no more.
func TestReloadWarnsAboutRestartOnlySettings(t *testing.T) {
	yaml := func(bodyBytes, idle, format, body string) string {
		return `
workers: 1
log: { format: ` + format + ` }
timeouts: { idle: ` + idle + ` }
limits: { body_bytes: ` + bodyBytes + ` }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - respond: { status: 200, body: ` + body + ` }
`
	}
	conf := func(bodyBytes, idle, format, body string) *config.Config {
		cfg, err := config.Parse("test.yaml", []byte(yaml(bodyBytes, idle, format, body)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	logs := &testkit.SyncBuffer{}
	a, addr := startAppLog(t, yaml("10", "75s", "json", "one"), slog.New(slog.NewTextHandler(logs, nil)))
	logs.Take()
	if err := a.Reload(conf("1KiB", "5s", "text", "two")); err != nil {
		t.Fatal(err)
	}
	got := logs.Take()
	if !strings.Contains(got, "take effect on restart or upgrade") || !strings.Contains(got, "keys=log.format,timeouts.idle,limits.body_bytes") {
		t.Errorf("reload log lacks a warning naming log.format, timeouts.idle and limits.body_bytes:\n%s", got)
	}
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader(strings.Repeat("x", 100)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("100-byte body after the reload: %d, want 413 (body_bytes stays 10 until restart)", resp.StatusCode)
	}

	if err := a.Reload(conf("10", "75s", "json", "three")); err != nil {
		t.Fatal(err)
	}
	if got := logs.Take(); strings.Contains(got, "take effect on restart") {
		t.Errorf("a reload back to the running values warned:\n%s", got)
	}
	if got := getBody(t, "http://"+addr+"/"); got != "three" {
		t.Errorf("body after the second reload %q, want three (routes are applied)", got)
	}
}

// TestReloadWarnsAboutAcceptProxyChange: accept_proxy takes effect on restart
// or upgrade for an address already served (its listener's PROXY header gate
// is made at start), so a reload that changes it there names it in the
// warning; one that adds a new address with accept_proxy applies it there and
// does not warn.
func TestReloadWarnsAboutAcceptProxyChange(t *testing.T) {
	yaml := func(nets, extra string) string {
		return `
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    accept_proxy: ` + nets + `
    routes:
      - respond: { status: 200, body: "ok" }
` + extra
	}
	logs := &testkit.SyncBuffer{}
	a, _ := startAppLog(t, yaml("[10.0.0.0/8]", ""), slog.New(slog.NewTextHandler(logs, nil)))
	for _, tc := range []struct {
		yaml string
		warn bool
	}{
		{yaml("[]", ""), true},
		{yaml("[10.0.0.0/8, 192.0.2.0/24]", ""), true},
		{yaml("[10.0.0.0/8]", `  - listen: ["127.0.0.2:0"]
    accept_proxy: [10.0.0.0/8]
    routes:
      - respond: { status: 200, body: "new" }
`), false},
	} {
		cfg, err := config.Parse("test.yaml", []byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		logs.Take()
		if err := a.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		got := logs.Take()
		if warned := strings.Contains(got, "keys=accept_proxy"); warned != tc.warn {
			t.Errorf("reload to\n%s\nwarned about accept_proxy: %v, want %v:\n%s", tc.yaml, warned, tc.warn, got)
		}
	}
}

// TestReloadWithUnbindableAddressChangesNothing: a reload whose file adds an
// address that cannot be bound (here one a socket without SO_REUSEPORT holds)
// is refused before anything changes: the other address it adds does not start
// listening, and the running address keeps its running routes.
func TestReloadWithUnbindableAddressChangesNothing(t *testing.T) {
	// The free address sorts before the taken one, so that it would be bound
	// first if the addresses were not all checked beforehand.
	taken, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	yaml := func(body string, listen ...string) string {
		return `
workers: 1
servers:
  - listen: ["` + strings.Join(listen, `", "`) + `"]
    routes:
      - respond: { status: 200, body: ` + body + ` }
`
	}
	a, addr := startApp(t, yaml("old", "127.0.0.1:0"))
	cfg, err := config.Parse("test.yaml", []byte(yaml("new", "127.0.0.1:0", freeAddr, taken.Addr().String())))
	if err != nil {
		t.Fatal(err)
	}
	err = a.Reload(cfg)
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) || !strings.Contains(err.Error(), "bind: address already in use") {
		t.Fatalf("reload: %v, want a bind error naming %s", err, taken.Addr())
	}
	if c, err := net.Dial("tcp", freeAddr); err == nil {
		c.Close()
		t.Errorf("%s listens after the refused reload", freeAddr)
	}
	if got := getBody(t, "http://"+addr+"/"); got != "old" {
		t.Errorf("running address answers %q after the refused reload, want old", got)
	}
}

// getBody sends GET url and returns the response body.
func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	return b.String()
}

// TestReloadWarnsAboutBucketsChange: the histogram buckets are made at start
// (each route's counters hold one slot per bucket), so a reload that changes
// admin.metrics.buckets names it in the warning and the scrape keeps the old
// bounds. It used to be applied silently as nothing at all.
func TestReloadWarnsAboutBucketsChange(t *testing.T) {
	yaml := func(buckets string) string {
		return `
workers: 1
admin: { listen: 127.0.0.1:0, metrics: { buckets: ` + buckets + ` } }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - name: r
        respond: { status: 200, body: "ok" }
`
	}
	logs := &testkit.SyncBuffer{}
	a, addr := startAppLog(t, yaml("[1ms, 1s]"), slog.New(slog.NewTextHandler(logs, nil)))
	logs.Take()
	cfg, err := config.Parse("test.yaml", []byte(yaml("[2ms, 20ms, 3s]")))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := logs.Take(); !strings.Contains(got, "take effect on restart or upgrade") || !strings.Contains(got, "admin.metrics.buckets") {
		t.Errorf("reload log lacks a warning naming admin.metrics.buckets:\n%s", got)
	}
	getBody(t, "http://"+addr+"/")
	text := scrape(t, &http.Client{}, a.AdminAddr())
	if !strings.Contains(text, `gale_http_request_duration_seconds_bucket{route="r",server="server0",le="0.001"}`) {
		t.Errorf("the running buckets changed after the reload:\n%s", text)
	}
}

// TestReloadWarnsAboutTLSProtocolChange: a reload that adds h2 to a TLS
// server's protocols warns that it takes effect on restart, as on a plain
// server. The TLS listener's handler wraps the router (HSTS, client
// certificate refusals), and the check used to look for the router itself, so
// a TLS server never warned.
func TestReloadWarnsAboutTLSProtocolChange(t *testing.T) {
	f := testCertFiles(t)
	conf := func(protocols string) string {
		return fmt.Sprintf(`
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    protocols: %s
    tls:
      certificates: [{ cert: %s, key: %s }]
      hsts: 1h
    routes:
      - respond: { status: 200, body: "ok" }
`, protocols, f.Cert, f.Key)
	}
	logs := &testkit.SyncBuffer{}
	a, _ := startAppLog(t, conf("[http1]"), slog.New(slog.NewTextHandler(logs, nil)))
	logs.Take()
	cfg, err := config.Parse("test.yaml", []byte(conf("[http1, h2]")))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := logs.Take(); !strings.Contains(got, "a change of protocols on a listening address takes effect on restart or upgrade") {
		t.Errorf("no warning about the change of protocols:\n%s", got)
	}
}

// testCertFiles issues a certificate for localhost from a new test CA.
func testCertFiles(t *testing.T) testcert.Files {
	t.Helper()
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.Issue("srv", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return f
}
