package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHealthConfig(t *testing.T) {
	src := `upstreams:
  app:
    servers: ["127.0.0.1:9001", "127.0.0.1:9002"]
    health_check: { type: http, interval: 1s, timeout: 500ms, fall: 2, http: { path: /healthz, expect_status: "200-299", body_contains: ok } }
    outlier_detection: { consecutive_5xx: 3 }
    circuit_breaker: { failure_ratio: 25% }
    limits: { max_connections: 100, max_in_flight: 50 }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: app }
`
	c, err := Parse("gale.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	u := c.Upstreams["app"]
	want := HealthCheck{Type: "http", Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2,
		HTTP: HTTPCheck{Method: "GET", Path: "/healthz", ExpectStatus: "200-299", BodyContains: "ok"}}
	if !reflect.DeepEqual(*u.HealthCheck, want) {
		t.Fatalf("health_check %+v", *u.HealthCheck)
	}
	if lo, hi, err := u.HealthCheck.HTTP.StatusRange(); lo != 200 || hi != 299 || err != nil {
		t.Fatalf("range %d-%d %v", lo, hi, err)
	}
	if o := u.OutlierDetection; o.Consecutive5xx != 3 || o.ConsecutiveGatewayFailure != 5 || o.BaseEjectionTime != 30*time.Second || o.MaxEjectionPercent != 10 {
		t.Fatalf("outlier_detection %+v", *o)
	}
	if b := u.CircuitBreaker; b.FailureRatio != 25 || b.MinRequests != 20 || b.OpenFor != 30*time.Second || b.HalfOpenProbes != 3 {
		t.Fatalf("circuit_breaker %+v", *b)
	}
	if u.Limits != (ServerLimits{MaxConnections: 100, MaxInFlight: 50}) {
		t.Fatalf("limits %+v", u.Limits)
	}
	again, err := Parse("again.yaml", []byte(c.String()))
	if err != nil {
		t.Fatalf("effective config does not parse: %v\n%s", err, c.String())
	}
	if !reflect.DeepEqual(again.Upstreams, c.Upstreams) {
		t.Fatalf("round trip differs:\n%s", c.String())
	}
}

// TestHealthCheckTimeoutFollowsInterval: a health check that writes an interval
// shorter than the default timeout (1s) and no timeout times out after its
// interval, so "interval: 500ms" alone is valid (it was refused for a timeout
// the file never wrote); a written timeout longer than the interval is still
// an error.
func TestHealthCheckTimeoutFollowsInterval(t *testing.T) {
	src := `upstreams:
  fast:
    servers: ["127.0.0.1:9001"]
    health_check: { interval: 300ms }
  slow:
    servers: ["127.0.0.1:9001"]
    health_check:
      interval: 5s
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: fast }
`
	c, err := Parse("gale.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Upstreams["fast"].HealthCheck.Timeout; got != 300*time.Millisecond {
		t.Errorf("fast: timeout %v, want the interval, 300ms", got)
	}
	if got := c.Upstreams["slow"].HealthCheck.Timeout; got != time.Second {
		t.Errorf("slow: timeout %v, want the default, 1s", got)
	}
	if _, err := Parse("again.yaml", []byte(c.String())); err != nil {
		t.Fatalf("effective config does not parse: %v", err)
	}
	got := errorLines(t, strings.Replace(src, "{ interval: 300ms }", "{ interval: 300ms, timeout: 1s }", 1))
	want := []string{"gale.yaml:4:47: upstreams.fast.health_check.timeout: must be positive and at most the interval (300ms), got 1s"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}

func TestHealthConfigErrors(t *testing.T) {
	src := `upstreams:
  app:
    servers: ["127.0.0.1:9001"]
    health_check: { type: udp, interval: 1s, timeout: 2s, rise: 0, http: { method: "G T", path: healthz, expect_status: "500-200" } }
    outlier_detection: { consecutive_5xx: -1, base_ejection_time: 10s, max_ejection_time: 1s, max_ejection_percent: 101 }
    circuit_breaker: { min_requests: 0, open_for: 0s, half_open_probes: 0 }
    limits: { max_connections: -1 }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - proxy: { upstream: app }
`
	want := []string{
		`gale.yaml:4:27: upstreams.app.health_check.type: invalid value "udp": expected one of tcp, http`,
		`gale.yaml:4:55: upstreams.app.health_check.timeout: must be positive and at most the interval (1s), got 2s`,
		`gale.yaml:4:65: upstreams.app.health_check.rise: 0 is out of range 1-100`,
		`gale.yaml:4:84: upstreams.app.health_check.http.method: invalid method "G T"`,
		`gale.yaml:4:97: upstreams.app.health_check.http.path: must start with / and hold no whitespace, got "healthz"`,
		`gale.yaml:4:121: upstreams.app.health_check.http.expect_status: expected a status range like "200-399" or a status like "200", got "500-200"`,
		`gale.yaml:5:43: upstreams.app.outlier_detection.consecutive_5xx: -1 is out of range 0-1000`,
		`gale.yaml:5:91: upstreams.app.outlier_detection.max_ejection_time: must be at least base_ejection_time (10s), got 1s`,
		`gale.yaml:5:117: upstreams.app.outlier_detection.max_ejection_percent: 101 is out of range 0-100`,
		`gale.yaml:6:38: upstreams.app.circuit_breaker.min_requests: must be at least 1, got 0`,
		`gale.yaml:6:51: upstreams.app.circuit_breaker.open_for: must be positive`,
		`gale.yaml:6:73: upstreams.app.circuit_breaker.half_open_probes: 0 is out of range 1-1000`,
		`gale.yaml:7:32: upstreams.app.limits.max_connections: -1 is out of range 0-1000000 (0: no limit)`,
	}
	got := errorLines(t, src)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// A tcp entry may not use a group whose servers are names.
func TestTCPGroupOfNames(t *testing.T) {
	src := `upstreams:
  dyn:
    servers: ["app.internal:5432"]
tcp:
  - listen: ["127.0.0.1:0"]
    upstream: dyn
`
	want := []string{`gale.yaml:6:15: tcp[0].upstream: upstream "dyn" has the server "app.internal:5432", a name: tcp entries take upstreams of IP addresses only (names are resolved for HTTP proxy routes)`}
	if got := errorLines(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// The send and expect bytes of a tcp check: only for type tcp, bounded.
func TestTCPCheckErrors(t *testing.T) {
	src := `upstreams:
  db:
    servers: ["127.0.0.1:5432"]
    health_check: { type: http, tcp: { send: "PING\r\n" } }
  mail:
    servers: ["127.0.0.1:25"]
    health_check: { type: tcp, tcp: { expect: "` + strings.Repeat("x", MaxTCPCheckBytes+1) + `" } }
tcp:
  - listen: ["127.0.0.1:0"]
    upstream: db
  - listen: ["127.0.0.1:1"]
    upstream: mail
`
	want := []string{
		`gale.yaml:4:46: upstreams.db.health_check.tcp.send: applies to checks of type tcp, not http`,
		`gale.yaml:7:47: upstreams.mail.health_check.tcp.expect: is 4097 bytes; at most 4096 are allowed`,
	}
	if got := errorLines(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	ok := "upstreams:\n  redis:\n    servers: [\"127.0.0.1:6379\"]\n    health_check: { tcp: { send: \"PING\\r\\n\", expect: \"+PONG\" } }\ntcp:\n  - listen: [\"127.0.0.1:0\"]\n    upstream: redis\n"
	c, err := Parse("gale.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Upstreams["redis"].HealthCheck; h.Type != "tcp" || h.TCP.Send != "PING\r\n" || h.TCP.Expect != "+PONG" {
		t.Fatalf("parsed %+v", h)
	}
}
