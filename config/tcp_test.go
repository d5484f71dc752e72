package config

import (
	"fmt"
	"go.yaml.in/yaml/v3"
	"strings"
	"testing"
	"time"
)

func TestTCPParse(t *testing.T) {
	c, err := Parse("gale.yaml", []byte(`tcp:
  - listen: ["127.0.0.1:5432"]
    upstreams: ["127.0.0.1:6000", "localhost:6001"]
    send_proxy: v2
    accept_proxy: [10.0.0.0/8, 192.0.2.7]
    timeouts: {idle: 30s}
    sni:
      "a.example": ["127.0.0.1:7000"]
      "*.b.example": ["127.0.0.1:7001"]
`))
	if err != nil {
		t.Fatal(err)
	}
	tc := c.TCP[0]
	if tc.Timeouts.Idle != 30*time.Second || tc.Timeouts.Connect != 5*time.Second || tc.SendProxy != "v2" ||
		len(tc.SNI) != 2 || tc.SpliceAfter != 256<<10 || len(tc.Upstreams) != 2 || tc.SNI["a.example"].Servers[0] != "127.0.0.1:7000" {
		t.Fatalf("got %+v", tc)
	}
	if p, _ := ParseCIDRs(tc.AcceptProxy); len(p) != 2 || p[1].Bits() != 32 {
		t.Fatalf("accept_proxy: %v", p)
	}
}

func TestTCPErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"no upstream", "tcp:\n  - listen: [\":0\"]\n", "gale.yaml:2:5: tcp[0]: upstream, upstreams or sni is required"},
		{"unknown group", "upstreams:\n  db: {servers: [\"127.0.0.1:1\"]}\ntcp:\n  - listen: [\":0\"]\n    upstream: dv\n", `gale.yaml:5:15: tcp[0].upstream: no upstream named "dv" in upstreams (did you mean "db"?)`},
		{"group and list", "upstreams:\n  db: {servers: [\"127.0.0.1:1\"]}\ntcp:\n  - listen: [\":0\"]\n    upstream: db\n    upstreams: [\"127.0.0.1:2\"]\n", `gale.yaml:5:15: tcp[0].upstream: tcp takes upstream (a name) or upstreams (a list of servers), not both`},
		{"sni unknown group", "tcp:\n  - listen: [\":0\"]\n    sni: {a.example: upa}\n", `gale.yaml:3:22: tcp[0].sni.a.example: no upstream named "upa" in upstreams`},
		{"sni not a list", "tcp:\n  - listen: [\":0\"]\n    sni: {a.example: {x: 1}}\n", `gale.yaml:3:22: tcp[0].sni.a.example: expected the name of an upstream or a list of servers`},
		{"group and sni default", "upstreams:\n  db: {servers: [\"127.0.0.1:1\"]}\ntcp:\n  - listen: [\":0\"]\n    upstream: db\n    sni: {default: db}\n", `gale.yaml:5:15: tcp[0].upstream: both upstream and sni.default are set`},
		{"bad upstream", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"db:5432\"]\n", `gale.yaml:3:17: tcp[0].upstreams[0]: invalid upstream "db:5432": expected an IP address or localhost`},
		{"port zero", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:0\"]\n", `gale.yaml:3:17: tcp[0].upstreams[0]: invalid upstream "127.0.0.1:0"`},
		{"send_proxy", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:1\"]\n    send_proxy: v3\n", `gale.yaml:4:17: tcp[0].send_proxy: invalid value "v3": expected one of off, v1, v2`},
		{"cidr", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:1\"]\n    accept_proxy: [10.0.0.0/33]\n", `gale.yaml:4:19: tcp[0].accept_proxy: invalid network "10.0.0.0/33"`},
		{"sni name", "tcp:\n  - listen: [\":0\"]\n    sni: {\"bad name\": [\"127.0.0.1:1\"]}\n", `gale.yaml:3:23: tcp[0].sni.bad name: invalid server name "bad name"`},
		{"sni name twice", "tcp:\n  - listen: [\":0\"]\n    sni: {\"A.example\": [\"127.0.0.1:1\"], \"a.example.\": [\"127.0.0.1:2\"]}\n", `gale.yaml:3:55: tcp[0].sni.a.example.: server name "a.example." is "A.example" again: names are compared without case and without a trailing dot`},
		{"sni wildcard twice", "tcp:\n  - listen: [\":0\"]\n    sni: {\"*.b.example\": [\"127.0.0.1:1\"], \"*.B.Example\": [\"127.0.0.1:2\"]}\n", `tcp[0].sni.*.b.example: server name "*.b.example" is "*.B.Example" again`},
		{"sni Default", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:1\"]\n    sni: {Default: [\"127.0.0.1:2\"]}\n", `gale.yaml:4:20: tcp[0].sni.Default: the default route is written default, in lower case ("Default" would be a server name)`},
		{"sni default twice", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:1\"]\n    sni: {default: [\"127.0.0.1:2\"]}\n", `gale.yaml:3:16: tcp[0].upstreams: both upstreams and sni.default are set`},
		{"idle zero", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:1\"]\n    timeouts: {idle: 0}\n", `gale.yaml:4:22: tcp[0].timeouts.idle: must be positive`},
		{"server accept_proxy", "servers:\n  - listen: [\":8080\"]\n    accept_proxy: [10.0.0.1/40]\n    routes: [{respond: {}}]\n", `gale.yaml:3:19: servers[0].accept_proxy: invalid network "10.0.0.1/40"`},
		{"overlaps server", "servers:\n  - listen: [\":8080\"]\n    routes: [{respond: {}}]\ntcp:\n  - listen: [\"127.0.0.1:8080\"]\n    upstreams: [\"127.0.0.1:1\"]\n", `gale.yaml:5:14: tcp[0].listen[0]: address 127.0.0.1:8080 overlaps a listen address of servers[0].listen[0]`},
		{"overlaps admin", "admin: {listen: \"127.0.0.1:9901\"}\ntcp:\n  - listen: [\":9901\"]\n    upstreams: [\"127.0.0.1:1\"]\n", `gale.yaml:3:14: tcp[0].listen[0]: address :9901 overlaps a listen address of admin.listen`},
		{"overlaps redirect_http", "servers:\n  - listen: [\"127.0.0.1:8443\"]\n    tls: {certificates: [{cert: c.pem, key: k.pem}], redirect_http: [\"127.0.0.1:8080\"]}\n    routes: [{respond: {}}]\ntcp:\n  - listen: [\"127.0.0.1:8080\"]\n    upstreams: [\"127.0.0.1:1\"]\n", `gale.yaml:6:14: tcp[0].listen[0]: address 127.0.0.1:8080 overlaps a listen address of servers[0].tls.redirect_http[0]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("gale.yaml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestTCPNamedUpstreams(t *testing.T) {
	src := `upstreams:
  db: {servers: ["127.0.0.1:6000", {address: "127.0.0.1:6001", weight: 3}]}
  web: {servers: ["127.0.0.1:7000"]}
tcp:
  - listen: ["127.0.0.1:5432"]
    upstream: db
    timeouts: {connect: 2s}
    max_conns: 100
  - listen: ["127.0.0.1:8443"]
    sni: {"a.example": web, "*.b.example": ["127.0.0.1:7001"], "c.example": "127.0.0.1:7002", default: db}
`
	c, err := Parse("gale.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.TCP[0], c.TCP[1]
	if a.Upstream != "db" || len(a.Upstreams) != 0 || a.Timeouts.Connect != 2*time.Second || a.Timeouts.Idle != time.Hour || a.MaxConns != 100 {
		t.Fatalf("tcp[0] %+v", a)
	}
	if b.SNI["a.example"].Upstream != "web" || b.SNI["default"].Upstream != "db" ||
		b.SNI["*.b.example"].Servers[0] != "127.0.0.1:7001" || b.SNI["c.example"].Servers[0] != "127.0.0.1:7002" {
		t.Fatalf("tcp[1].sni %+v", b.SNI)
	}
	// The effective configuration (gale check) parses back to the same.
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("effective.yaml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// (Compared as printed: an empty list and a missing one are the same here.)
	if a, b := fmt.Sprintf("%+v", again.TCP), fmt.Sprintf("%+v", c.TCP); a != b {
		t.Fatalf("round trip changed tcp:\n%s\n%s", a, b)
	}
}

// TestTCPOnIOURing: tcp entries are accepted with every engine (relays run on
// io_uring too; `gale check` refused that combination before).
func TestTCPOnIOURing(t *testing.T) {
	for _, e := range []string{"io_uring", "auto", "epoll"} {
		if _, err := Parse("gale.yaml", []byte("engine: "+e+"\ntcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:1\"]\n")); err != nil {
			t.Errorf("engine %s with a tcp entry: %v", e, err)
		}
	}
}
