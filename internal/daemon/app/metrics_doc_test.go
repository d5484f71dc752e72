package app

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/testkit"
)

// docMetric is one row of the metrics table of docs/observability.md.
type docMetric struct {
	kind   string
	labels []string // sorted
}

// documentedMetrics parses the table of docs/observability.md whose rows
// start with a metric name: | `name` | type | `label`, `label` or — | meaning |.
func documentedMetrics(t *testing.T) map[string]docMetric {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `(gale_[a-z0-9_]+)` \\| ([a-z]+) \\| ([^|]*) \\|")
	label := regexp.MustCompile("`([a-z_]+)`")
	out := map[string]docMetric{}
	for _, line := range strings.Split(string(b), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		d := docMetric{kind: m[2]}
		for _, l := range label.FindAllStringSubmatch(m[3], -1) {
			d.labels = append(d.labels, l[1])
		}
		slices.Sort(d.labels)
		if _, dup := out[m[1]]; dup {
			t.Errorf("docs/observability.md lists %s twice", m[1])
		}
		out[m[1]] = d
	}
	if len(out) == 0 {
		t.Fatal("no metrics table in docs/observability.md")
	}
	return out
}

// scrapedMetrics returns the families of a /metrics text with their types and
// label names (le of histogram buckets left out).
func scrapedMetrics(t *testing.T, text string) map[string]docMetric {
	t.Helper()
	out := map[string]docMetric{}
	labelSets := map[string]map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, _ := strings.Cut(rest, " ")
			out[name] = docMetric{kind: kind}
			labelSets[name] = map[string]bool{}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		series, _, _ := strings.Cut(line, " ")
		name, ls, _ := strings.Cut(series, "{")
		fam := name
		if _, ok := out[fam]; !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok {
					if _, ok := out[base]; ok {
						fam = base
					}
				}
			}
		}
		set := labelSets[fam]
		if set == nil {
			t.Errorf("series %s has no # TYPE line", series)
			continue
		}
		for _, pair := range regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`).FindAllStringSubmatch(ls, -1) {
			if pair[1] != "le" {
				set[pair[1]] = true
			}
		}
	}
	for name, set := range labelSets {
		d := out[name]
		for l := range set {
			d.labels = append(d.labels, l)
		}
		slices.Sort(d.labels)
		out[name] = d
	}
	return out
}

// TestEveryMetricDocumented runs an instance with every feature that has
// metrics (routes and an access log, HTTP/2, TLS, pub/sub, a proxy to an
// upstream with health checks, a tcp entry, accept_proxy) and checks that the
// families its /metrics serves are exactly the rows of the metrics table of
// docs/observability.md, with the same types and labels.
func TestEveryMetricDocumented(t *testing.T) {
	dir := t.TempDir()
	_, cert := serverCert(t)
	up := testkit.FreePort(t)
	a, _ := startApp(t, fmt.Sprintf(`workers: 1
admin: { listen: "127.0.0.1:0" }
upstreams:
  back:
    servers: [%q]
    health_check: { interval: 1s }
    limits: { max_in_flight: 10 }
tcp:
  - listen: ["127.0.0.1:0"]
    upstream: back
servers:
  - name: web
    listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    accept_proxy: [10.0.0.0/8]
    access_log: { path: %s, format: json }
    routes:
      - name: hub
        match: { path: /hub/ }
        pubsub: { topic: path }
      - name: px
        match: { path: /px/ }
        proxy: { upstream: back }
      - respond: { body: ok }
  - name: secure
    listen: ["127.0.0.2:0"]
    tls: { certificates: [{ cert: %s, key: %s }] }
    routes:
      - respond: { body: ok }
`, up, filepath.Join(dir, "access.log"), cert.Cert, cert.Key))
	text := scrape(t, &http.Client{Timeout: 10 * time.Second}, a.AdminAddr())
	docs := documentedMetrics(t)
	got := scrapedMetrics(t, text)
	for name, g := range got {
		d, ok := docs[name]
		switch {
		case !ok:
			t.Errorf("%s (%s, labels %v) is served but not in the metrics table of docs/observability.md", name, g.kind, g.labels)
		case d.kind != g.kind:
			t.Errorf("%s: served as %s, documented as %s", name, g.kind, d.kind)
		case !slices.Equal(d.labels, g.labels):
			t.Errorf("%s: served with labels %v, documented with %v", name, g.labels, d.labels)
		}
	}
	for name := range docs {
		if _, ok := got[name]; !ok {
			t.Errorf("%s is in docs/observability.md but not served", name)
		}
	}
}

// TestHealthCountersSurviveReload reloads a configuration whose upstream's
// health_check changed, which rebuilds the upstream's health group: its
// gale_upstream_server_checks_total continues from what it had counted instead
// of starting again from zero (26 then 0 with gale serve, which Prometheus takes
// for a counter reset).
func TestHealthCountersSurviveReload(t *testing.T) {
	up := testkit.Serve(t, func(c *net.TCPConn) { c.Close() })
	conf := func(interval string) string {
		return fmt.Sprintf(`workers: 1
admin: { listen: "127.0.0.1:0" }
upstreams:
  back:
    servers: [%q]
    health_check: { interval: %s }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: back }
`, up, interval)
	}
	a, _ := startApp(t, conf("10ms"))
	c := &http.Client{Timeout: 10 * time.Second}
	series := `gale_upstream_server_checks_total{result="passed",server="` + up + `",upstream="back"}`
	var before float64
	testkit.WaitFor(t, "a few checks", func() bool {
		before = metricValue(t, scrape(t, c, a.AdminAddr()), series)
		return before >= 3
	})
	next, err := config.Parse("next.yaml", []byte(conf("1h")))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if got := metricValue(t, scrape(t, c, a.AdminAddr()), series); got < before {
			t.Fatalf("%s = %v after the reload, was %v", series, got, before)
		}
	}
}
