package app

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/dnsresolve/dnstest"
	"github.com/gale-server/gale/internal/testkit"
)

// ipOrigin is an HTTP origin on a given loopback address, counting requests.
type ipOrigin struct {
	hits atomic.Int64
	port int
}

// startIPOrigins starts one origin per loopback IP, all on the same port, so
// that one host name can resolve to any of them.
func startIPOrigins(t *testing.T, ips ...string) []*ipOrigin {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		var lns []net.Listener
		port := 0
		ok := true
		for _, ip := range ips {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
			port = ln.Addr().(*net.TCPAddr).Port
		}
		if !ok {
			for _, ln := range lns {
				ln.Close()
			}
			continue
		}
		var out []*ipOrigin
		for _, ln := range lns {
			o := &ipOrigin{port: port}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				o.hits.Add(1)
				time.Sleep(2 * time.Millisecond)
				io.WriteString(w, "ok")
			})}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			out = append(out, o)
		}
		return out
	}
	t.Fatal("no common free port on the loopback addresses")
	return nil
}

// A host-named upstream follows its DNS records every resolve_every: servers
// that appear get traffic, servers that disappear get none, and no request in
// flight fails across the changes.
func TestDynamicUpstreamHostName(t *testing.T) {
	o := startIPOrigins(t, "127.0.0.2", "127.0.0.3")
	dns := dnstest.Start(t)
	dns.SetHost("app.test", "127.0.0.2")
	_, addr := startApp(t, fmt.Sprintf(`
workers: 2
upstreams:
  app:
    servers: ["app.test:%d"]
    resolver: "%s"
    resolve_every: 100ms
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: app }
`, o[0].port, dns.Addr))
	ld := testkit.StartLoad("http://"+addr+"/", 4)
	testkit.WaitFor(t, "traffic on the first address", func() bool { return o[0].hits.Load() > 20 })
	if o[1].hits.Load() != 0 {
		t.Fatal("traffic to an address DNS did not give")
	}
	dns.SetHost("app.test", "127.0.0.2", "127.0.0.3")
	testkit.WaitFor(t, "traffic on the added address", func() bool { return o[1].hits.Load() > 20 })
	dns.SetHost("app.test", "127.0.0.3")
	testkit.WaitFor(t, "the removed address to go quiet", func() bool {
		h := o[0].hits.Load()
		time.Sleep(300 * time.Millisecond)
		return o[0].hits.Load() == h
	})
	h1 := o[1].hits.Load()
	testkit.WaitFor(t, "traffic on the remaining address", func() bool { return o[1].hits.Load() > h1+20 })
	ld.Stop()
	if n := ld.Failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed across the DNS changes", n, ld.Done.Load())
	}
}

// An srv: upstream uses the lowest-priority SRV records with their weights.
func TestDynamicUpstreamSRV(t *testing.T) {
	o := startIPOrigins(t, "127.0.0.2", "127.0.0.3")
	dns := dnstest.Start(t)
	dns.SetHost("a.test", "127.0.0.2")
	dns.SetHost("b.test", "127.0.0.3")
	p := uint16(o[0].port)
	dns.SetSRV("_http._tcp.app.test",
		dnstest.SRV{Priority: 1, Weight: 3, Port: p, Target: "a.test"},
		dnstest.SRV{Priority: 1, Weight: 1, Port: p, Target: "b.test"},
		dnstest.SRV{Priority: 2, Weight: 50, Port: 1, Target: "a.test"})
	_, addr := startApp(t, fmt.Sprintf(`
workers: 1
upstreams:
  app:
    servers: ["srv:_http._tcp.app.test"]
    resolver: "%s"
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: app }
`, dns.Addr))
	c := &http.Client{Timeout: 10 * time.Second}
	for range 400 {
		if st, _ := get(t, c, "GET", "http://"+addr+"/", ""); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	if a, b := o[0].hits.Load(), o[1].hits.Load(); a != 300 || b != 100 {
		t.Fatalf("weights 3:1 gave %d:%d", a, b)
	}
}

// A name that does not resolve at start is an error naming the upstream.
func TestDynamicUpstreamUnresolvable(t *testing.T) {
	dns := dnstest.Start(t)
	cfgText := fmt.Sprintf(`
upstreams:
  app:
    servers: ["nope.test:80"]
    resolver: "%s"
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: app }
`, dns.Addr)
	cfg := mustParse(t, cfgText)
	if _, err := New(cfg, nil); err == nil || !contains(err.Error(), "upstream app") || !contains(err.Error(), "NXDOMAIN") {
		t.Fatalf("err = %v", err)
	}
}

func mustParse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
