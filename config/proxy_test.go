package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestProxyConfig(t *testing.T) {
	src := `upstreams:
  app:
    servers: ["127.0.0.1:9001", { address: "127.0.0.1:9002", weight: 3 }]
    keepalive: { idle: 8, idle_timeout: 30s, max_requests: 100 }
    timeouts: { connect: 2s, response_header: 30s }
    retries: { tries: 3, on: [connect_failure], budget: 10% }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /api/ }
        proxy: { upstream: app, strip_prefix: /api, set_headers: { X-A: b }, preserve_host: true, trusted_proxies: [10.0.0.0/8, 127.0.0.1] }
      - proxy:
          upstreams: ["127.0.0.1:9003"]
          keepalive: 64
`
	c, err := Parse("gale.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	u := c.Upstreams["app"]
	want := &Upstream{
		Servers:      []UpstreamServer{{"127.0.0.1:9001", 1, false}, {"127.0.0.1:9002", 3, false}},
		Balance:      "weighted_round_robin",
		HashKey:      "ip",
		VNodes:       150,
		TableSize:    65537,
		Keepalive:    Keepalive{8, 30 * time.Second, 100},
		Timeouts:     UpstreamTimeouts{2 * time.Second, 30 * time.Second, time.Minute, time.Minute},
		Retries:      Retries{3, []string{RetryConnectFailure}, 10},
		ResolveEvery: 30 * time.Second,
	}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("upstream\n %+v\nwant\n %+v", u, want)
	}
	p := c.Servers[0].Routes[0].Proxy
	if p.Upstream != "app" || p.StripPrefix != "/api" || !p.PreserveHost || p.SetHeaders["X-A"] != "b" || len(p.TrustedProxies) != 2 {
		t.Fatalf("route %+v", p)
	}
	in := c.Servers[0].Routes[1].Proxy.InlineUpstream()
	if in.Keepalive.Idle != 64 || in.Keepalive.MaxRequests != 10000 || in.Servers[0].Address != "127.0.0.1:9003" {
		t.Fatalf("inline %+v", in)
	}
	// The effective configuration prints and parses back to the same.
	again, err := Parse("again.yaml", []byte(c.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, c.String())
	}
	if again.String() != c.String() || !reflect.DeepEqual(again.Upstreams, c.Upstreams) {
		t.Fatalf("round trip differs:\n%s\n%s", c.String(), again.String())
	}
}

func TestProxyConfigErrors(t *testing.T) {
	src := `upstreams:
  app:
    servers: ["localhost:xx", { address: "127.0.0.1:1", weight: 0 }]
    keepalive: { max_requests: 0 }
    retries: { tries: 11, on: [connect_fail], budget: 200% }
  empty: {}
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: ap }
      - proxy: { upstream: app, keepalive: 3 }
      - proxy: { upstreams: ["1.2.3.4"], strip_prefix: api/, trusted_proxies: [nope] }
      - proxy: {}
      - proxy: { upstream: app, via: "my proxy" }
      - proxy: { upstream: app, set_headers: { Host: h, Content-Length: "5", transfer-encoding: chunked, X-A: b, x-a: c } }
      - proxy: { upstreams: ["127.0.0.1:0", "[::1]:0"] }
      - proxy: { upstream: app, set_headers: { "X B": c, X-C: "a\r\nX-Evil: 1" } }
`
	want := []string{
		`gale.yaml:3:15: upstreams.app.servers[0]: invalid server address "localhost:xx": port "xx" is out of range 1-65535`,
		`gale.yaml:3:65: upstreams.app.servers[1].weight: weight 0 is out of range 1-1000`,
		`gale.yaml:4:32: upstreams.app.keepalive.max_requests: must be at least 1, got 0`,
		`gale.yaml:5:23: upstreams.app.retries.tries: 11 is out of range 1-10`,
		`gale.yaml:5:32: upstreams.app.retries.on[0]: unknown retry condition "connect_fail": expected connect_failure or reset_before_response (did you mean "connect_failure"?)`,
		`gale.yaml:5:55: upstreams.app.retries.budget: expected a percentage like "20%" (0-100%), got "200%"`,
		`gale.yaml:6:10: upstreams.empty.servers: at least one server is required`,
		`gale.yaml:10:28: servers[0].routes[0].proxy.upstream: no upstream named "ap" in upstreams (did you mean "app"?)`,
		`gale.yaml:11:44: servers[0].routes[1].proxy.keepalive: keepalive belongs to the named upstream "app", not to the route`,
		`gale.yaml:12:30: servers[0].routes[2].proxy.upstreams[0]: invalid server address "1.2.3.4": expected ip:port (a port from 1 to 65535) like 127.0.0.1:8080, or localhost:8080`,
		`gale.yaml:12:56: servers[0].routes[2].proxy.strip_prefix: must start with / and not end with / (like /api), got "api/"`,
		`gale.yaml:12:80: servers[0].routes[2].proxy.trusted_proxies[0]: invalid CIDR "nope": expected a prefix like 10.0.0.0/8 or an address`,
		`gale.yaml:13:16: servers[0].routes[3].proxy: proxy needs upstream (a name from upstreams) or upstreams (a list of servers)`,
		"gale.yaml:14:38: servers[0].routes[4].proxy.via: must be a token (letters, digits and !#$%&'*+-.^_`|~) such as gale, got \"my proxy\"",
		`gale.yaml:15:73: servers[0].routes[5].proxy.set_headers.Content-Length: Content-Length is written by the proxy from the request's framing and connection; it cannot be set`,
		`gale.yaml:15:97: servers[0].routes[5].proxy.set_headers.transfer-encoding: transfer-encoding is written by the proxy from the request's framing and connection; it cannot be set`,
		`gale.yaml:15:119: servers[0].routes[5].proxy.set_headers.x-a: x-a is set twice (as X-A too); field names are case-insensitive`,
		`gale.yaml:16:30: servers[0].routes[6].proxy.upstreams[0]: invalid server address "127.0.0.1:0": port 0 cannot be connected to; expected a port from 1 to 65535`,
		`gale.yaml:16:45: servers[0].routes[6].proxy.upstreams[1]: invalid server address "[::1]:0": port 0 cannot be connected to; expected a port from 1 to 65535`,
		"gale.yaml:17:55: servers[0].routes[7].proxy.set_headers.X B: invalid field name \"X B\": a name is a token (letters, digits and !#$%&'*+-.^_`|~)",
		`gale.yaml:17:63: servers[0].routes[7].proxy.set_headers.X-C: invalid value "a\r\nX-Evil: 1" for X-C: a field value holds no CR, LF or other control byte but tab`,
	}
	got := errorLines(t, src)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
