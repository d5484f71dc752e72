package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/internal/dnsresolve"
)

// HealthCheck configures the active health checks of an upstream's servers
// (docs/health.md). A server goes down after Fall failed checks in a row and up
// again after Rise passed ones.
type HealthCheck struct {
	// Type is tcp (a connect) or http (a request on a fresh connection).
	Type string `yaml:"type" conf:"enum=tcp|http"`
	// Interval is the time between two checks of a server.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one check, connect included.
	Timeout time.Duration `yaml:"timeout"`
	// Jitter adds a random delay up to this much to each interval.
	Jitter time.Duration `yaml:"jitter"`
	// Rise is the passed checks in a row that bring a server up.
	Rise int `yaml:"rise"`
	// Fall is the failed checks in a row that take a server down.
	Fall int `yaml:"fall"`
	// HTTP is the request of an http check and what its response must be.
	HTTP HTTPCheck `yaml:"http"`
	// TCP is what a tcp check sends after connecting and expects back.
	TCP TCPCheck `yaml:"tcp"`
}

// TCPCheck is the exchange of a tcp health check after its connect: without
// Expect, the connect alone passes.
type TCPCheck struct {
	// Send is written to the server once connected ("" sends nothing).
	Send string `yaml:"send"`
	// Expect, when set, must occur in the first 64 KiB the server sends.
	Expect string `yaml:"expect"`
}

// MaxTCPCheckBytes bounds health_check.tcp.send and health_check.tcp.expect.
const MaxTCPCheckBytes = 4096

// SetDefaults sets every field of h to its default.
func (h *HealthCheck) SetDefaults() {
	*h = HealthCheck{Type: "tcp", Interval: 2 * time.Second, Timeout: time.Second, Jitter: 0, Rise: 2, Fall: 3}
	h.HTTP.SetDefaults()
}

// HTTPCheck is the request of an http health check.
type HTTPCheck struct {
	// Method is the request method.
	Method string `yaml:"method"`
	// Path is the request-target.
	Path string `yaml:"path"`
	// Host is the Host field; "" sends the server's address.
	Host string `yaml:"host"`
	// ExpectStatus is the passing status range, "200-399" or one status "204".
	ExpectStatus string `yaml:"expect_status"`
	// BodyContains, when set, must occur in the first 64 KiB of the body.
	BodyContains string `yaml:"body_contains"`
}

// SetDefaults sets every field of h to its default.
func (h *HTTPCheck) SetDefaults() {
	*h = HTTPCheck{Method: "GET", Path: "/", ExpectStatus: "200-399"}
}

// StatusRange parses ExpectStatus.
func (h *HTTPCheck) StatusRange() (lo, hi int, err error) {
	a, b, ok := strings.Cut(h.ExpectStatus, "-")
	if !ok {
		b = a
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 100 || hi > 599 || lo > hi {
		return 0, 0, fmt.Errorf("expected a status range like \"200-399\" or a status like \"200\", got %q", h.ExpectStatus)
	}
	return lo, hi, nil
}

// OutlierDetection configures passive outlier detection (Envoy semantics).
type OutlierDetection struct {
	// Consecutive5xx is the 5xx responses (or failed exchanges) in a row that
	// eject a server; 0 turns the rule off.
	Consecutive5xx int `yaml:"consecutive_5xx"`
	// ConsecutiveGatewayFailure is the 502/503/504 responses, connect failures,
	// resets and timeouts in a row that eject a server; 0 turns the rule off.
	ConsecutiveGatewayFailure int `yaml:"consecutive_gateway_failure"`
	// BaseEjectionTime times the server's number of ejections is how long an
	// ejection lasts.
	BaseEjectionTime time.Duration `yaml:"base_ejection_time"`
	// MaxEjectionTime caps an ejection.
	MaxEjectionTime time.Duration `yaml:"max_ejection_time"`
	// MaxEjectionPercent caps the share of servers ejected at once (never the
	// last available one).
	MaxEjectionPercent int `yaml:"max_ejection_percent"`
	// SlowStart is how long a returning server takes to get its full share.
	SlowStart time.Duration `yaml:"slow_start"`
}

// SetDefaults sets every field of o to its default.
func (o *OutlierDetection) SetDefaults() {
	*o = OutlierDetection{Consecutive5xx: 5, ConsecutiveGatewayFailure: 5, BaseEjectionTime: 30 * time.Second,
		MaxEjectionTime: 300 * time.Second, MaxEjectionPercent: 10, SlowStart: 0}
}

// CircuitBreaker configures a circuit breaker per server.
type CircuitBreaker struct {
	// Window is the sliding window the failure ratio is computed over.
	Window time.Duration `yaml:"window"`
	// MinRequests is the fewest outcomes in the window before it may open.
	MinRequests int `yaml:"min_requests"`
	// FailureRatio opens the breaker when failures reach this share, like "50%".
	FailureRatio Percent `yaml:"failure_ratio"`
	// OpenFor is how long it stays open before admitting probes.
	OpenFor time.Duration `yaml:"open_for"`
	// HalfOpenProbes is how many probes a half-open breaker admits; that many
	// successes close it.
	HalfOpenProbes int `yaml:"half_open_probes"`
}

// SetDefaults sets every field of b to its default.
func (b *CircuitBreaker) SetDefaults() {
	*b = CircuitBreaker{Window: 10 * time.Second, MinRequests: 20, FailureRatio: 50, OpenFor: 30 * time.Second, HalfOpenProbes: 3}
}

// ServerLimits bound what each server of an upstream is given, over all loops.
// 0 is no limit. An attempt over a limit goes to another server, or gets 503
// with Retry-After when none is left.
type ServerLimits struct {
	// MaxConnections bounds the open connections to a server.
	MaxConnections int `yaml:"max_connections"`
	// MaxPending bounds the connects in progress to a server.
	MaxPending int `yaml:"max_pending"`
	// MaxInFlight bounds the requests in flight to a server.
	MaxInFlight int `yaml:"max_in_flight"`
}

// deriveDefaults adjusts the defaults that depend on values the file wrote: a
// health check whose timeout is not written times out after its default (1s) or
// its interval, whichever is shorter, so that "interval: 500ms" alone is valid,
// as HAProxy's check timeout defaults to its inter.
func (c *Config) deriveDefaults() {
	for name, u := range c.Upstreams {
		h := u.HealthCheck
		if h != nil && h.Interval > 0 && h.Timeout > h.Interval &&
			!c.src.written(joinPath(joinPath("upstreams", name), "health_check.timeout")) {
			h.Timeout = h.Interval
		}
	}
}

// healthOf checks an upstream's health settings.
func (v *validator) healthOf(u *Upstream, path string) {
	if h := u.HealthCheck; h != nil {
		p := joinPath(path, "health_check")
		if h.Interval <= 0 || h.Interval > time.Hour {
			v.errorf(joinPath(p, "interval"), "must be between 1ms and 1h, got %v", h.Interval)
		}
		if h.Timeout <= 0 || h.Timeout > h.Interval && h.Interval > 0 {
			v.errorf(joinPath(p, "timeout"), "must be positive and at most the interval (%v), got %v", h.Interval, h.Timeout)
		}
		if h.Jitter < 0 || h.Jitter > h.Interval {
			v.errorf(joinPath(p, "jitter"), "must be between 0 and the interval, got %v", h.Jitter)
		}
		if h.Rise < 1 || h.Rise > 100 {
			v.errorf(joinPath(p, "rise"), "%d is out of range 1-100", h.Rise)
		}
		if h.Fall < 1 || h.Fall > 100 {
			v.errorf(joinPath(p, "fall"), "%d is out of range 1-100", h.Fall)
		}
		if !http1.IsToken(h.HTTP.Method) {
			v.errorf(joinPath(p, "http.method"), "invalid method %q", h.HTTP.Method)
		}
		if !strings.HasPrefix(h.HTTP.Path, "/") || strings.ContainsAny(h.HTTP.Path, " \t\r\n") {
			v.errorf(joinPath(p, "http.path"), "must start with / and hold no whitespace, got %q", h.HTTP.Path)
		}
		if h.HTTP.Host != "" && !http1.ValidFieldValue(h.HTTP.Host) {
			v.errorf(joinPath(p, "http.host"), "invalid host %q", h.HTTP.Host)
		}
		if _, _, err := h.HTTP.StatusRange(); err != nil {
			v.errorf(joinPath(p, "http.expect_status"), "%v", err)
		}
		for _, kv := range [2][2]string{{"tcp.send", h.TCP.Send}, {"tcp.expect", h.TCP.Expect}} {
			key, val := kv[0], kv[1]
			switch {
			case len(val) > MaxTCPCheckBytes:
				v.errorf(joinPath(p, key), "is %d bytes; at most %d are allowed", len(val), MaxTCPCheckBytes)
			case val != "" && h.Type != "tcp":
				v.errorf(joinPath(p, key), "applies to checks of type tcp, not %s", h.Type)
			}
		}
	}
	if o := u.OutlierDetection; o != nil {
		p := joinPath(path, "outlier_detection")
		if o.Consecutive5xx < 0 || o.Consecutive5xx > 1000 {
			v.errorf(joinPath(p, "consecutive_5xx"), "%d is out of range 0-1000", o.Consecutive5xx)
		}
		if o.ConsecutiveGatewayFailure < 0 || o.ConsecutiveGatewayFailure > 1000 {
			v.errorf(joinPath(p, "consecutive_gateway_failure"), "%d is out of range 0-1000", o.ConsecutiveGatewayFailure)
		}
		if o.BaseEjectionTime <= 0 {
			v.errorf(joinPath(p, "base_ejection_time"), "must be positive")
		}
		if o.MaxEjectionTime < o.BaseEjectionTime {
			v.errorf(joinPath(p, "max_ejection_time"), "must be at least base_ejection_time (%v), got %v", o.BaseEjectionTime, o.MaxEjectionTime)
		}
		if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
			v.errorf(joinPath(p, "max_ejection_percent"), "%d is out of range 0-100", o.MaxEjectionPercent)
		}
		if o.SlowStart < 0 {
			v.errorf(joinPath(p, "slow_start"), "must not be negative")
		}
	}
	if b := u.CircuitBreaker; b != nil {
		p := joinPath(path, "circuit_breaker")
		if b.Window < 10*time.Millisecond {
			v.errorf(joinPath(p, "window"), "must be at least 10ms, got %v", b.Window)
		}
		if b.MinRequests < 1 {
			v.errorf(joinPath(p, "min_requests"), "must be at least 1, got %d", b.MinRequests)
		}
		if b.FailureRatio <= 0 {
			v.errorf(joinPath(p, "failure_ratio"), "must be above 0%%")
		}
		if b.OpenFor <= 0 {
			v.errorf(joinPath(p, "open_for"), "must be positive")
		}
		if b.HalfOpenProbes < 1 || b.HalfOpenProbes > 1000 {
			v.errorf(joinPath(p, "half_open_probes"), "%d is out of range 1-1000", b.HalfOpenProbes)
		}
	}
	if u.ResolveEvery < 0 || u.ResolveEvery > 0 && u.ResolveEvery < 100*time.Millisecond {
		v.errorf(joinPath(path, "resolve_every"), "must be 0 (resolve once) or at least 100ms, got %v", u.ResolveEvery)
	}
	if u.Resolver != "" {
		if _, err := ParseUpstream(u.Resolver); err != nil {
			v.errorf(joinPath(path, "resolver"), "invalid DNS server %q: expected ip:port like 127.0.0.1:53", u.Resolver)
		}
	}
	l := u.Limits
	for name, n := range map[string]int{"max_connections": l.MaxConnections, "max_pending": l.MaxPending, "max_in_flight": l.MaxInFlight} {
		if n < 0 || n > 1_000_000 {
			v.errorf(joinPath(path, "limits."+name), "%d is out of range 0-1000000 (0: no limit)", n)
		}
	}
}

// tcpGroupLiterals refuses a group with host names or srv: specs where a tcp
// entry uses it: the layer-4 proxy takes IP literals only.
func (v *validator) tcpGroupLiterals(u *Upstream, name, path string) {
	for _, s := range u.Servers {
		if addr, _ := s.Endpoint(); dnsresolve.IsName(addr) && !strings.HasPrefix(addr, "localhost:") {
			v.errorf(path, "upstream %q has the server %q, a name: tcp entries take upstreams of IP addresses only (names are resolved for HTTP proxy routes)", name, s.Address)
			return
		}
	}
}
