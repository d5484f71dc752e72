package config

import (
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
		len(tc.SNI) != 2 || tc.SpliceAfter != 0 || len(tc.Upstreams) != 2 {
		t.Fatalf("got %+v", tc)
	}
	if p, _ := ParseCIDRs(tc.AcceptProxy); len(p) != 2 || p[1].Bits() != 32 {
		t.Fatalf("accept_proxy: %v", p)
	}
}

func TestTCPErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"no upstream", "tcp:\n  - listen: [\":0\"]\n", "gale.yaml:2:5: tcp[0]: upstreams (or sni) is required"},
		{"bad upstream", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"db:5432\"]\n", `gale.yaml:3:17: tcp[0].upstreams[0]: invalid upstream "db:5432": expected an IP address or localhost`},
		{"port zero", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:0\"]\n", `gale.yaml:3:17: tcp[0].upstreams[0]: invalid upstream "127.0.0.1:0"`},
		{"send_proxy", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:1\"]\n    send_proxy: v3\n", `gale.yaml:4:17: tcp[0].send_proxy: invalid value "v3": expected one of off, v1, v2`},
		{"cidr", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:1\"]\n    accept_proxy: [10.0.0.0/33]\n", `gale.yaml:4:19: tcp[0].accept_proxy: invalid network "10.0.0.0/33"`},
		{"sni name", "tcp:\n  - listen: [\":0\"]\n    sni: {\"bad name\": [\"127.0.0.1:1\"]}\n", `gale.yaml:3:23: tcp[0].sni.bad name: invalid server name "bad name"`},
		{"sni default twice", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:1\"]\n    sni: {default: [\"127.0.0.1:2\"]}\n", `gale.yaml:3:16: tcp[0].upstreams: both upstreams and sni.default are set`},
		{"idle zero", "tcp:\n  - listen: [\":0\"]\n    upstreams: [\"127.0.0.1:1\"]\n    timeouts: {idle: 0}\n", `gale.yaml:4:22: tcp[0].timeouts.idle: must be positive`},
		{"overlaps server", "servers:\n  - listen: [\":8080\"]\n    routes: [{respond: {}}]\ntcp:\n  - listen: [\"127.0.0.1:8080\"]\n    upstreams: [\"127.0.0.1:1\"]\n", `gale.yaml:5:14: tcp[0].listen[0]: address 127.0.0.1:8080 overlaps a listen address of servers[0].listen[0]`},
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
