package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/internal/testkit"
)

// countingOrigin is an origin that counts its requests and accepted connections.
type countingOrigin struct {
	*httptest.Server
	hits, conns atomic.Int64
}

func newCountingOrigin(t *testing.T, delay time.Duration) *countingOrigin {
	o := &countingOrigin{}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		time.Sleep(delay)
		io.WriteString(w, "ok")
	}))
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.conns.Add(1)
		}
	}
	o.Start()
	t.Cleanup(o.Close)
	return o
}

func (o *countingOrigin) hostPort() string { return strings.TrimPrefix(o.URL, "http://") }

func healthConfig(a, b, body string, checks bool) string {
	hc := "health_check: { type: tcp, interval: 200ms, timeout: 100ms }"
	if !checks {
		hc = "circuit_breaker: {}"
	}
	return fmt.Sprintf(`
workers: 2
admin: { listen: 127.0.0.1:0 }
upstreams:
  app:
    servers: ["%s", "%s"]
    %s
    outlier_detection: { consecutive_5xx: 5 }
    limits: { max_in_flight: 1000 }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /app }
        proxy: { upstream: app }
      - respond: { body: %s }
`, a, b, hc, body)
}

func adminDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// The admin API lists upstreams with their state and drains, enables and
// reweighs a server without a reload; a drain under load fails no request and
// the drained server gets no new ones. Bad requests get 400, 404 or 405 with a
// JSON reason.
func TestUpstreamAdminAPIDrainUnderLoad(t *testing.T) {
	oa, ob := newCountingOrigin(t, 5*time.Millisecond), newCountingOrigin(t, 5*time.Millisecond)
	a, addr := startApp(t, healthConfig(oa.hostPort(), ob.hostPort(), "x", true))
	admin := "http://" + a.AdminAddr()
	ld := testkit.StartLoad("http://"+addr+"/app", 4)
	testkit.WaitFor(t, "traffic on both origins", func() bool { return oa.hits.Load() > 10 && ob.hits.Load() > 10 })
	st, body := adminDo(t, "POST", admin+"/upstreams/app/servers/"+oa.hostPort(), `{"action": "drain"}`)
	if st != 200 || !strings.Contains(body, `"drained":true`) {
		t.Fatalf("drain: %d %s", st, body)
	}
	var g health.GroupStatus
	testkit.WaitFor(t, "the drained server's requests to finish", func() bool {
		_, body := adminDo(t, "GET", admin+"/upstreams/app", "")
		json.Unmarshal([]byte(body), &g)
		return g.Servers[0].InFlight == 0
	})
	h := oa.hits.Load()
	d := ld.Done.Load()
	testkit.WaitFor(t, "more requests", func() bool { return ld.Done.Load() > d+100 })
	if n := oa.hits.Load() - h; n != 0 {
		t.Errorf("the drained server got %d new requests", n)
	}
	if st, body := adminDo(t, "POST", admin+"/upstreams/app/servers/0", `{"action": "enable", "weight": 3}`); st != 200 || !strings.Contains(body, `"weight":3`) {
		t.Fatalf("enable: %d %s", st, body)
	}
	h = oa.hits.Load()
	testkit.WaitFor(t, "traffic back on the enabled server", func() bool { return oa.hits.Load() > h+30 })
	ld.Stop()
	if n := ld.Failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed", n, ld.Done.Load())
	}
	st, body = adminDo(t, "GET", admin+"/upstreams", "")
	var list struct{ Upstreams []health.GroupStatus }
	if err := json.Unmarshal([]byte(body), &list); st != 200 || err != nil || len(list.Upstreams) != 1 {
		t.Fatalf("list: %d %v %s", st, err, body)
	}
	if s := list.Upstreams[0].Servers[1]; s.Address != ob.hostPort() || !s.Healthy || s.Breaker != "closed" || s.ChecksOK == 0 || s.Requests == 0 || s.LatencyEWMA == nil {
		t.Fatalf("server row %+v", s)
	}
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/upstreams/nope", "", 404, `no upstream named \"nope\"`},
		{"POST", "/upstreams/app/servers/10.0.0.1:1", `{"action":"drain"}`, 404, "has no server"},
		{"POST", "/upstreams/app/servers/0", `{"action":`, 400, "invalid JSON"},
		{"POST", "/upstreams/app/servers/0", `{"action":"pause"}`, 400, `unknown action \"pause\"`},
		{"POST", "/upstreams/app/servers/0", `{"weight":0}`, 400, "out of range"},
		{"POST", "/upstreams/app/servers/0", `{"colour":"red"}`, 400, "unknown field"},
		{"POST", "/upstreams/app/servers/0", `{}`, 400, "nothing to change"},
		{"POST", "/upstreams/app/servers/0", `{"weight":2}{"action":"drain"}`, 400, "more than one JSON value"},
		{"GET", "/upstreams/app/servers/0", "", 405, "not allowed"},
		{"DELETE", "/upstreams", "", 405, "not allowed"},
	} {
		st, body := adminDo(t, c.method, admin+c.path, c.body)
		if st != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s %s %s: %d %s, want %d with %q", c.method, c.path, c.body, st, body, c.status, c.want)
		}
	}
	if _, text := adminDo(t, "GET", admin+"/metrics", ""); !strings.Contains(text, `gale_upstream_server_healthy{server="`+ob.hostPort()+`",upstream="app"} 1`) {
		t.Errorf("metrics lack the health gauge:\n%s", text)
	}
}

// A reload that leaves an upstream's settings alone keeps the upstream: its
// pooled connections (no new dial to the origin) and its runtime state (a drain).
func TestReloadKeepsUpstreamPools(t *testing.T) {
	oa, ob := newCountingOrigin(t, 0), newCountingOrigin(t, 0)
	a, addr := startApp(t, healthConfig(oa.hostPort(), ob.hostPort(), "one", false))
	c := &http.Client{Timeout: 10 * time.Second}
	for range 20 {
		get(t, c, "GET", "http://"+addr+"/app", "")
	}
	conns := oa.conns.Load() + ob.conns.Load()
	hits := oa.hits.Load() + ob.hits.Load()
	if st, _ := adminDo(t, "POST", "http://"+a.AdminAddr()+"/upstreams/app/servers/1", `{"action":"drain"}`); st != 200 {
		t.Fatal("drain failed")
	}
	next, err := config.Parse("next.yaml", []byte(healthConfig(oa.hostPort(), ob.hostPort(), "two", false)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	if _, b := get(t, c, "GET", "http://"+addr+"/", ""); b != "two" {
		t.Fatalf("reload not applied: %q", b)
	}
	for range 20 {
		if st, _ := get(t, c, "GET", "http://"+addr+"/app", ""); st != 200 {
			t.Fatalf("status %d after reload", st)
		}
	}
	if n := oa.hits.Load() + ob.hits.Load() - hits; n != 20 {
		t.Fatalf("origins got %d requests, want 20", n)
	}
	if n := oa.conns.Load() + ob.conns.Load() - conns; n != 0 {
		t.Fatalf("the reload cost %d new connections to the origins", n)
	}
	_, body := adminDo(t, "GET", "http://"+a.AdminAddr()+"/upstreams/app", "")
	if !strings.Contains(body, `"drained":true`) {
		t.Fatalf("the drain did not survive the reload: %s", body)
	}
}

// A reload that changes an upstream's servers keeps the pooled connections to the
// servers that remain: the kept origin sees no new connection, the added one gets
// traffic, the removed one none.
func TestReloadChangedUpstreamKeepsRemainingPools(t *testing.T) {
	oa, ob, oc := newCountingOrigin(t, 0), newCountingOrigin(t, 0), newCountingOrigin(t, 0)
	conf := func(x, y string) string {
		return fmt.Sprintf(`
workers: 1
upstreams:
  app:
    servers: ["%s", "%s"]
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: app }
`, x, y)
	}
	a, addr := startApp(t, conf(oa.hostPort(), ob.hostPort()))
	c := &http.Client{Timeout: 10 * time.Second}
	for range 10 {
		get(t, c, "GET", "http://"+addr+"/", "")
	}
	connsA, hitsA, hitsB := oa.conns.Load(), oa.hits.Load(), ob.hits.Load()
	if connsA != 1 {
		t.Fatalf("origin a has %d connections before the reload, want 1 pooled", connsA)
	}
	next, err := config.Parse("next.yaml", []byte(conf(oa.hostPort(), oc.hostPort())))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(next); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if st, _ := get(t, c, "GET", "http://"+addr+"/", ""); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	if n := oa.hits.Load() - hitsA; n != 5 {
		t.Fatalf("the kept server got %d of 10 requests", n)
	}
	if n := oa.conns.Load(); n != connsA {
		t.Fatalf("the kept server saw %d connections after the reload, want the pooled one only", n)
	}
	if ob.hits.Load() != hitsB || oc.hits.Load() != 5 {
		t.Fatalf("removed server got %d more, added server %d", ob.hits.Load()-hitsB, oc.hits.Load())
	}
}
