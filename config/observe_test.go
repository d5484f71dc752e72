package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBadObservabilityConfigs(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"admin on a public address without a token", "admin:\n  listen: \":9901\"\n" + okServers,
			[]string{`gale.yaml:2:11: admin.listen: :9901 is not a loopback address: set admin.token (at least 16 characters) so that only its holders reach /metrics and /status, or listen on 127.0.0.1`}},
		{"short token", "admin: { listen: 10.0.0.1:9901, token: abc }\n" + okServers,
			[]string{`gale.yaml:1:40: admin.token: the token has 3 characters; use at least 16`}},
		{"admin on a server's address", "admin: { listen: 127.0.0.1:8080 }\n" + okServers,
			[]string{`gale.yaml:1:18: admin.listen: address 127.0.0.1:8080 overlaps servers[0].listen[0] (127.0.0.1:8080)`}},
		{"buckets out of order", "admin: { metrics: { buckets: [10ms, 5ms, 0s] } }\n" + okServers,
			[]string{
				`gale.yaml:1:37: admin.metrics.buckets[1]: 5ms is not greater than the bucket before it (10ms): list buckets in increasing order`,
				`gale.yaml:1:42: admin.metrics.buckets[2]: must be greater than zero`,
			}},
		{"bad names and log format", `
servers:
  - name: "a b"
    listen: ["127.0.0.1:8080"]
    access_log: { path: x.log, format: clf }
    routes:
      - { name: r, respond: {} }
      - { name: r, respond: {} }
`, []string{
			`gale.yaml:3:11: servers[0].name: invalid name "a b": expected 1-64 letters, digits, '_', '-' or '.'`,
			`gale.yaml:5:40: servers[0].access_log.format: invalid value "clf": expected one of combined, json`,
			`gale.yaml:8:17: servers[0].routes[1].name: name "r" is already used by servers[0].routes[0]`,
		}},
		{"access log in a missing directory, or a directory", `
servers:
  - listen: ["127.0.0.1:8080"]
    access_log: { path: /nonexistent-gale-dir/access.log }
    routes: [{ respond: {} }]
  - listen: ["127.0.0.1:8081"]
    access_log: { path: testdata }
    routes: [{ respond: {} }]
`, []string{
			`gale.yaml:4:25: servers[0].access_log.path: cannot create /nonexistent-gale-dir/access.log: directory /nonexistent-gale-dir: no such file or directory`,
			`gale.yaml:7:25: servers[1].access_log.path: ` + mustAbs(t, "testdata") + ` is a directory: expected a file to write`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorLines(t, tt.src); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestObservabilityConfig(t *testing.T) {
	c, err := Parse("/etc/gale/gale.yaml", []byte(`
admin: { listen: "[::1]:9901", metrics: { buckets: [1ms, 2s] } }
servers:
  - name: web
    listen: ["127.0.0.1:8080"]
    access_log: { path: testdata/access.log, format: json }
    routes:
      - { name: api, respond: {} }
      - respond: {}
  - listen: ["127.0.0.1:8081"]
    access_log: { path: stdout }
    routes:
      - respond: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Admin.Metrics.Buckets; !reflect.DeepEqual(got, []time.Duration{time.Millisecond, 2 * time.Second}) {
		t.Errorf("buckets %v", got)
	}
	if p := c.Servers[0].AccessLog.Path; !filepath.IsAbs(p) || !strings.HasSuffix(p, "/testdata/access.log") {
		t.Errorf("log path %q, want it made absolute", p)
	}
	if p := c.Servers[1].AccessLog.Path; p != LogStdout {
		t.Errorf("stdout became %q", p)
	}
	if c.ServerName(0) != "web" || c.ServerName(1) != "server1" || c.Servers[0].RouteName(0) != "api" || c.Servers[0].RouteName(1) != "route1" {
		t.Errorf("names %s %s %s %s", c.ServerName(0), c.ServerName(1), c.Servers[0].RouteName(0), c.Servers[0].RouteName(1))
	}
	if got := New().Admin.Metrics.Buckets; !reflect.DeepEqual(got, DefaultBuckets()) {
		t.Errorf("default buckets %v", got)
	}
}

// mustAbs returns the absolute form of a path relative to the working
// directory, as Parse resolves it.
func mustAbs(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestAdminOverlapsRedirectHTTP: the admin listener may not take a server's
// redirect_http address either; both would listen there and split its
// connections.
func TestAdminOverlapsRedirectHTTP(t *testing.T) {
	_, err := Parse("gale.yaml", []byte(`admin: { listen: "127.0.0.1:8080" }
servers:
  - listen: ["127.0.0.1:8443"]
    tls: { certificates: [{ cert: c.pem, key: k.pem }], redirect_http: [":8080"] }
    routes: [{ respond: {} }]
`))
	want := `gale.yaml:1:18: admin.listen: address 127.0.0.1:8080 overlaps servers[0].tls.redirect_http[0] (:8080)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
