package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestBalanceConfig(t *testing.T) {
	src := `upstreams:
  sticky:
    servers: ["127.0.0.1:9001", { address: "127.0.0.1:9002", weight: 2 }, { address: "127.0.0.1:9003", backup: true }]
    balance: maglev
    hash_key: cookie:sid
    bounded_load: 25%
    table_size: 65537
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: sticky }
`
	c, err := Parse("gale.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	u := c.Upstreams["sticky"]
	if u.Balance != "maglev" || u.HashKey != "cookie:sid" || u.BoundedLoad != 25 || u.VNodes != 150 ||
		!reflect.DeepEqual(u.Servers[2], UpstreamServer{"127.0.0.1:9003", 1, true}) {
		t.Errorf("upstream %+v", u)
	}
	// The effective configuration prints the backup flag and parses again.
	out := []byte(c.String())
	if !strings.Contains(string(out), "backup: true") {
		t.Errorf("effective configuration lost the backup flag:\n%s", out)
	}
	if _, err := Parse("again.yaml", out); err != nil {
		t.Errorf("effective configuration does not parse: %v", err)
	}
}

func TestBalanceConfigErrors(t *testing.T) {
	src := `upstreams:
  a:
    servers: [{ address: "127.0.0.1:1", weight: 2 }]
    balance: round_robin
  b:
    servers: ["127.0.0.1:1"]
    balance: leastconn
  c:
    servers: ["127.0.0.1:1"]
    balance: hash
    hash_key: "header:"
  d:
    servers: ["127.0.0.1:1"]
    hash_key: uri
    bounded_load: 10%
  e:
    servers: ["127.0.0.1:1"]
    balance: ip_hash
    hash_key: cookie:s
  f:
    servers: [{ address: "127.0.0.1:1", backup: true }]
    balance: maglev
    table_size: 65536
    vnodes: 0
  g:
    servers: ["127.0.0.1:1", "127.0.0.1:2"]
    balance: maglev
    table_size: 101
  h:
    servers: ["127.0.0.1:1"]
    balance: hash
    hash_key: query:a=b
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstreams: ["127.0.0.1:1"], balance: random, hash_key: uri }
tcp:
  - listen: ["127.0.0.1:0"]
    upstream: a
    balance: least_conn
  - listen: ["127.0.0.1:0"]
    upstreams: ["127.0.0.1:5"]
    balance: lest_conn
`
	want := []string{
		`gale.yaml:3:49: upstreams.a.servers[0].weight: round_robin ignores weights; use balance: weighted_round_robin to weigh servers`,
		`gale.yaml:7:14: upstreams.b.balance: invalid value "leastconn": expected one of round_robin, weighted_round_robin, least_conn, ip_hash, hash, maglev, p2c_ewma, random, first (did you mean "least_conn"?)`,
		`gale.yaml:11:15: upstreams.c.hash_key: hash key "header:" needs a name after the colon, like header:session`,
		`gale.yaml:14:15: upstreams.d.hash_key: hash_key is read only by balance: hash and maglev, not by weighted_round_robin`,
		`gale.yaml:15:19: upstreams.d.bounded_load: bounded_load applies to balance: hash and maglev, not to weighted_round_robin`,
		`gale.yaml:19:15: upstreams.e.hash_key: ip_hash always hashes the client address; for hash_key cookie:s use balance: hash (or maglev)`,
		`gale.yaml:21:14: upstreams.f.servers: every server is a backup; at least one must not be`,
		`gale.yaml:23:17: upstreams.f.table_size: 65536 is not a prime from 2 to 16777213 (the default is 65537)`,
		`gale.yaml:24:13: upstreams.f.vnodes: 0 is out of range 1-10000`,
		`gale.yaml:28:17: upstreams.g.table_size: 101 is under 100 entries per server (2 servers): the table would spread keys unevenly; use a prime of at least 200`,
		`gale.yaml:32:15: upstreams.h.hash_key: hash key name "a=b" has the character '=', which is not allowed in a query name (letters, digits and !#$%&'*+-.^_` + "`" + `|~)`,
		`gale.yaml:36:73: servers[0].routes[0].proxy.hash_key: hash_key is read only by balance: hash and maglev, not by random`,
		`gale.yaml:40:14: tcp[0].balance: balance applies to server lists written in the entry; a named upstream is balanced by its own balance`,
		`gale.yaml:43:14: tcp[1].balance: invalid value "lest_conn": expected one of round_robin, weighted_round_robin, least_conn, ip_hash, hash, maglev, p2c_ewma, random, first (did you mean "least_conn"?)`,
	}
	got := errorLines(t, src)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
