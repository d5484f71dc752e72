package config

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/internal/dnsresolve"
	"go.yaml.in/yaml/v3"
)

// Upstream is a named group of origin servers that proxy routes forward to
// (the top-level upstreams mapping), with its connection settings.
type Upstream struct {
	// Servers are the origin addresses ("ip:port"), with optional weights.
	Servers []UpstreamServer `yaml:"servers"`
	// Balance is the load-balancing method (docs/proxy.md, "Choosing a server").
	Balance string `yaml:"balance" conf:"enum=round_robin|weighted_round_robin|least_conn|ip_hash|hash|maglev|p2c_ewma|random|first"`
	// HashKey is where hash and maglev take a request's key from: ip, uri,
	// header:NAME, cookie:NAME or query:NAME.
	HashKey string `yaml:"hash_key"`
	// BoundedLoad, above 0%, caps each server of hash and maglev at
	// (1 + BoundedLoad) × the mean in-flight requests.
	BoundedLoad Percent `yaml:"bounded_load"`
	// VNodes is the ring points per unit of weight of hash.
	VNodes int `yaml:"vnodes"`
	// TableSize is the Maglev lookup table size, a prime.
	TableSize int `yaml:"table_size"`
	// Keepalive bounds the pool of idle connections to each server.
	Keepalive Keepalive `yaml:"keepalive"`
	// Timeouts bound each stage of an upstream exchange.
	Timeouts UpstreamTimeouts `yaml:"timeouts"`
	// Retries says when a failed attempt is tried again.
	Retries Retries `yaml:"retries"`
	// HealthCheck, OutlierDetection, CircuitBreaker and Limits configure
	// health (config/health.go, docs/health.md); absent sections are off.
	HealthCheck      *HealthCheck      `yaml:"health_check,omitempty"`
	OutlierDetection *OutlierDetection `yaml:"outlier_detection,omitempty"`
	CircuitBreaker   *CircuitBreaker   `yaml:"circuit_breaker,omitempty"`
	Limits           ServerLimits      `yaml:"limits"`
	// ResolveEvery re-resolves server host names and srv: specs this often; 0
	// resolves them once, at start and on reload.
	ResolveEvery time.Duration `yaml:"resolve_every"`
	// Resolver is the DNS server (ip:port) names are resolved with; "" takes the
	// first nameserver of /etc/resolv.conf.
	Resolver string `yaml:"resolver"`
	// TLS configures connections to https:// servers.
	TLS *UpstreamTLS `yaml:"tls,omitempty"`
}

// SetDefaults sets every field of u to its default; Servers stays empty.
func (u *Upstream) SetDefaults() {
	*u = Upstream{Balance: "weighted_round_robin", HashKey: "ip", VNodes: 150, TableSize: 65537, ResolveEvery: 30 * time.Second}
	u.Keepalive.SetDefaults()
	u.Timeouts.SetDefaults()
	u.Retries.SetDefaults()
}

// UpstreamServer is one origin server. In YAML it is "ip:port" or a mapping
// { address, weight, backup }.
type UpstreamServer struct {
	// Address is the server's "ip:port", or "https://ip:port" for TLS.
	Address string `yaml:"address"`
	// Weight is the server's share of requests relative to the others (1-1000).
	Weight int `yaml:"weight"`
	// Backup servers take requests only when no other server may.
	Backup bool `yaml:"backup"`
}

var _ nodeDecoder = (*UpstreamServer)(nil)
var _ nodeEncoder = (*UpstreamServer)(nil)

// decodeNode accepts a scalar address or a mapping.
func (s *UpstreamServer) decodeNode(d *decoder, n *yaml.Node, path string) {
	*s = UpstreamServer{Weight: 1}
	switch n.Kind {
	case yaml.ScalarNode:
		if !isNull(n) {
			s.Address = n.Value
			return
		}
	case yaml.MappingNode:
		d.structure(n, reflectValue(s), path)
		return
	}
	d.errorf(n, path, "expected an address like \"127.0.0.1:8080\" or { address, weight, backup }, got %s", describe(n))
}

// encodeNode writes the address alone when the weight is 1 and it is no backup.
func (s *UpstreamServer) encodeNode() *yaml.Node {
	if s.Weight == 1 && !s.Backup {
		return scalar("!!str", s.Address)
	}
	m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	m.Content = append(m.Content, scalar("!!str", "address"), scalar("!!str", s.Address),
		scalar("!!str", "weight"), scalar("!!int", strconv.Itoa(s.Weight)))
	if s.Backup {
		m.Content = append(m.Content, scalar("!!str", "backup"), scalar("!!bool", "true"))
	}
	return m
}

// Keepalive bounds the idle connections kept open to each upstream server,
// per event loop. In YAML a plain integer sets Idle.
type Keepalive struct {
	// Idle is the most idle connections kept per server and loop; 0 closes
	// every connection after its response.
	Idle int `yaml:"idle"`
	// IdleTimeout closes a pooled connection unused for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxRequests closes a connection after it carried this many requests.
	MaxRequests int `yaml:"max_requests"`
}

// SetDefaults sets every field of k to its default.
func (k *Keepalive) SetDefaults() {
	*k = Keepalive{Idle: 64, IdleTimeout: 60 * time.Second, MaxRequests: 10000}
}

var _ nodeDecoder = (*Keepalive)(nil)

// decodeNode accepts an integer (the idle limit) or a mapping.
func (k *Keepalive) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		d.integer(n, reflectValue(&k.Idle), path)
		return
	}
	d.structure(n, reflectValue(k), path)
}

// UpstreamTimeouts bound the stages of one exchange with an upstream server.
type UpstreamTimeouts struct {
	// Connect bounds establishing a connection.
	Connect time.Duration `yaml:"connect"`
	// ResponseHeader bounds the wait, from the end of the request, for the
	// response head.
	ResponseHeader time.Duration `yaml:"response_header"`
	// Read bounds the wait between two reads of the response body.
	Read time.Duration `yaml:"read"`
	// Write bounds the wait for the upstream to accept request bytes.
	Write time.Duration `yaml:"write"`
}

// SetDefaults sets every field of t to its default.
func (t *UpstreamTimeouts) SetDefaults() {
	*t = UpstreamTimeouts{Connect: 5 * time.Second, ResponseHeader: 60 * time.Second, Read: 60 * time.Second, Write: 60 * time.Second}
}

// Retries says when a failed attempt at an upstream exchange is tried again.
type Retries struct {
	// Tries is the most attempts per request, the first included (1-10).
	Tries int `yaml:"tries"`
	// On lists the failures that are retried: connect_failure and
	// reset_before_response (the connection failed before any response byte,
	// for a request without a body or an idempotent one whose body was not sent).
	On []string `yaml:"on"`
	// Budget is the share of recent requests that may be retries, written
	// like "20%".
	Budget Percent `yaml:"budget"`
}

// Retry conditions for Retries.On.
const (
	RetryConnectFailure      = "connect_failure"
	RetryResetBeforeResponse = "reset_before_response"
)

// SetDefaults sets every field of r to its default.
func (r *Retries) SetDefaults() {
	*r = Retries{Tries: 2, On: []string{RetryConnectFailure, RetryResetBeforeResponse}, Budget: 20}
}

// Percent is a share written "20%" (0-100).
type Percent float64

var _ nodeDecoder = (*Percent)(nil)
var _ nodeEncoder = (*Percent)(nil)

func (p *Percent) decodeNode(d *decoder, n *yaml.Node, path string) {
	s, ok := strings.CutSuffix(n.Value, "%")
	f, err := strconv.ParseFloat(s, 64)
	if n.Kind != yaml.ScalarNode || !ok || err != nil || f < 0 || f > 100 {
		d.errorf(n, path, "expected a percentage like \"20%%\" (0-100%%), got %s", describe(n))
		return
	}
	*p = Percent(f)
}

func (p *Percent) encodeNode() *yaml.Node {
	return scalar("!!str", strconv.FormatFloat(float64(*p), 'f', -1, 64)+"%")
}

// Proxy forwards matched requests to an upstream: a named one (Upstream) or
// the servers listed inline (Upstreams) with the inline settings.
type Proxy struct {
	// Upstream names an entry of the top-level upstreams mapping.
	Upstream string `yaml:"upstream"`
	// Upstreams lists the servers of an unnamed upstream instead.
	Upstreams []UpstreamServer `yaml:"upstreams"`
	// Balance, HashKey, BoundedLoad, VNodes, TableSize, Keepalive, Timeouts,
	// Retries and TLS configure the inline upstream.
	Balance     string           `yaml:"balance" conf:"enum=round_robin|weighted_round_robin|least_conn|ip_hash|hash|maglev|p2c_ewma|random|first"`
	HashKey     string           `yaml:"hash_key"`
	BoundedLoad Percent          `yaml:"bounded_load"`
	VNodes      int              `yaml:"vnodes"`
	TableSize   int              `yaml:"table_size"`
	Keepalive   Keepalive        `yaml:"keepalive"`
	Timeouts    UpstreamTimeouts `yaml:"timeouts"`
	Retries     Retries          `yaml:"retries"`
	TLS         *UpstreamTLS     `yaml:"tls,omitempty"`
	// StripPrefix is removed from the start of the normalized path before the
	// request is forwarded.
	StripPrefix string `yaml:"strip_prefix"`
	// SetHeaders replaces (or adds) request fields sent upstream.
	SetHeaders map[string]string `yaml:"set_headers"`
	// PreserveHost forwards the client's Host instead of the server address.
	PreserveHost bool `yaml:"preserve_host"`
	// TrustedProxies lists the CIDRs of peers whose X-Forwarded-*, X-Real-IP
	// and Forwarded fields are kept and appended to; from any other peer they are
	// replaced.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Via, when not empty, is the pseudonym gale adds as a Via entry
	// ("1.1 NAME") to requests sent upstream and responses sent back.
	Via string `yaml:"via"`
	// IgnoreClientHalfClose keeps a request going when its client half-closes
	// (a FIN) while the origin answers; by default the request is abandoned, as
	// nginx does. A closed or reset connection aborts it either way.
	IgnoreClientHalfClose bool `yaml:"ignore_client_half_close"`
	// UnderscoresInHeaders forwards request fields whose names hold an
	// underscore; by default they are dropped, as nginx does.
	UnderscoresInHeaders bool `yaml:"underscores_in_headers"`
}

// SetDefaults sets every field of p to its default.
func (p *Proxy) SetDefaults() {
	var u Upstream
	u.SetDefaults()
	*p = Proxy{Balance: u.Balance, HashKey: u.HashKey, VNodes: u.VNodes, TableSize: u.TableSize,
		Keepalive: u.Keepalive, Timeouts: u.Timeouts, Retries: u.Retries, SetHeaders: map[string]string{}}
}

// InlineUpstream returns the upstream of the inline form.
func (p *Proxy) InlineUpstream() *Upstream {
	return &Upstream{Servers: p.Upstreams, Balance: p.Balance, HashKey: p.HashKey, BoundedLoad: p.BoundedLoad,
		VNodes: p.VNodes, TableSize: p.TableSize, Keepalive: p.Keepalive, Timeouts: p.Timeouts, Retries: p.Retries, TLS: p.TLS}
}

// inlineKeys are the proxy keys that only the inline form takes.
var inlineKeys = []string{"balance", "hash_key", "bounded_load", "vnodes", "table_size", "keepalive", "timeouts", "retries", "tls"}

// upstreams checks the named upstreams.
func (v *validator) upstreams(ups map[string]*Upstream) {
	names := make([]string, 0, len(ups))
	for name := range ups {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := joinPath("upstreams", name)
		if !http1.IsToken(name) {
			v.errorf(p, "upstream name %q must be a token (letters, digits, - _ .)", name)
		}
		v.upstream(ups[name], p, "servers")
	}
}

// upstream checks one upstream; serversKey names its server list in YAML.
func (v *validator) upstream(u *Upstream, path, serversKey string) {
	if len(u.Servers) == 0 {
		v.errorf(joinPath(path, serversKey), "at least one server is required")
	}
	for i, s := range u.Servers {
		sp := fmt.Sprintf("%s[%d]", joinPath(path, serversKey), i)
		if a, https := s.Endpoint(); isPortZero(a) {
			v.errorf(sp, "invalid server address %q: port 0 cannot be connected to; expected a port from 1 to 65535", s.Address)
		} else if !validAddrPort(a) {
			if serversKey != "servers" {
				// An inline list is not resolved: IP literals, and localhost.
				if _, err := ParseUpstream(a); err != nil {
					v.errorf(sp, "invalid server address %q: expected ip:port (a port from 1 to 65535) like 127.0.0.1:8080, or localhost:8080", s.Address)
				}
			} else if https || !dnsresolve.IsName(a) {
				v.errorf(sp, "invalid server address %q: expected ip:port (a port from 1 to 65535) like 127.0.0.1:8080, host:port or srv:_service._proto.name", s.Address)
			} else if err := dnsresolve.Check(a); err != nil {
				v.errorf(sp, "invalid server address %q: %v", s.Address, err)
			}
		}
		if s.Weight < 1 || s.Weight > 1000 {
			v.errorf(joinPath(sp, "weight"), "weight %d is out of range 1-1000", s.Weight)
		}
	}
	v.balancing(u, path, serversKey)
	v.upstreamTLS(u, path, serversKey)
	k := u.Keepalive
	if k.Idle < 0 || k.Idle > 100000 {
		v.errorf(joinPath(path, "keepalive.idle"), "%d is out of range 0-100000", k.Idle)
	}
	if k.IdleTimeout <= 0 {
		v.errorf(joinPath(path, "keepalive.idle_timeout"), "must be positive")
	}
	if k.MaxRequests < 1 {
		v.errorf(joinPath(path, "keepalive.max_requests"), "must be at least 1, got %d", k.MaxRequests)
	}
	for name, d := range map[string]time.Duration{"connect": u.Timeouts.Connect, "response_header": u.Timeouts.ResponseHeader, "read": u.Timeouts.Read, "write": u.Timeouts.Write} {
		if d <= 0 {
			v.errorf(joinPath(path, "timeouts."+name), "must be positive")
		}
	}
	v.healthOf(u, path)
	r := u.Retries
	if r.Tries < 1 || r.Tries > 10 {
		v.errorf(joinPath(path, "retries.tries"), "%d is out of range 1-10", r.Tries)
	}
	for i, on := range r.On {
		if on != RetryConnectFailure && on != RetryResetBeforeResponse {
			v.errorf(fmt.Sprintf("%s[%d]", joinPath(path, "retries.on"), i), "unknown retry condition %q: expected %s or %s%s",
				on, RetryConnectFailure, RetryResetBeforeResponse, didYouMean(on, []string{RetryConnectFailure, RetryResetBeforeResponse}))
		}
	}
}

// proxy checks a proxy action.
func (v *validator) proxy(p *Proxy, path string) {
	switch {
	case p.Upstream != "" && len(p.Upstreams) > 0:
		v.errorf(path, "proxy takes upstream (a name) or upstreams (a list of servers), not both")
	case p.Upstream != "":
		if _, ok := v.c.Upstreams[p.Upstream]; !ok {
			var names []string
			for n := range v.c.Upstreams {
				names = append(names, n)
			}
			v.errorf(joinPath(path, "upstream"), "no upstream named %q in upstreams%s", p.Upstream, didYouMean(p.Upstream, names))
		}
		var def Proxy
		def.SetDefaults()
		dv, pv := reflect.ValueOf(def.InlineUpstream()).Elem(), reflect.ValueOf(p.InlineUpstream()).Elem()
		for _, k := range inlineKeys {
			field := strings.ReplaceAll(k, "_", "")
			// The effective configuration (gale check) prints the defaults, which
			// must parse again: only a value other than the default is refused.
			f := dv.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, field) })
			same := reflect.DeepEqual(f.Interface(), pv.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, field) }).Interface())
			if v.c.src.written(joinPath(path, k)) && !same {
				v.errorf(joinPath(path, k), "%s belongs to the named upstream %q, not to the route", k, p.Upstream)
			}
		}
	case len(p.Upstreams) > 0:
		v.upstream(p.InlineUpstream(), path, "upstreams")
	default:
		v.errorf(path, "proxy needs upstream (a name from upstreams) or upstreams (a list of servers)")
	}
	if p.StripPrefix != "" && (!strings.HasPrefix(p.StripPrefix, "/") || strings.HasSuffix(p.StripPrefix, "/") && p.StripPrefix != "/") {
		v.errorf(joinPath(path, "strip_prefix"), "must start with / and not end with / (like /api), got %q", p.StripPrefix)
	}
	seen := make(map[string]string, len(p.SetHeaders))
	for _, name := range slices.Sorted(maps.Keys(p.SetHeaders)) {
		at := joinPath(path, "set_headers."+name)
		lower := strings.ToLower(name)
		switch {
		case !http1.ValidFieldName(name):
			v.errorf(at, "invalid field name %q: a name is a token (letters, digits and !#$%%&'*+-.^_`|~)", name)
		case !http1.ValidFieldValue(p.SetHeaders[name]):
			v.errorf(at, "invalid value %q for %s: a field value holds no CR, LF or other control byte but tab", p.SetHeaders[name], name)
		case slices.Contains(framingFields, lower):
			v.errorf(at, "%s is written by the proxy from the request's framing and connection; it cannot be set", name)
		case seen[lower] != "":
			v.errorf(at, "%s is set twice (as %s too); field names are case-insensitive", name, seen[lower])
		}
		seen[lower] = name
	}
	if p.Via != "" && !http1.IsToken(p.Via) {
		v.errorf(joinPath(path, "via"), "must be a token (letters, digits and !#$%%&'*+-.^_`|~) such as gale, got %q", p.Via)
	}
	for i, c := range p.TrustedProxies {
		if _, err := ParseCIDR(c); err != nil {
			v.errorf(fmt.Sprintf("%s[%d]", joinPath(path, "trusted_proxies"), i), "%v", err)
		}
	}
}

// framingFields are the request fields, in lower case, that set_headers may not
// name: the proxy derives them from the parsed request (Content-Length,
// Transfer-Encoding, Expect) or from the connection to the upstream (the
// hop-by-hop fields of RFC 9110 §7.6.1), and a second, differing copy would let
// the upstream read another request than the one gale forwarded.
var framingFields = []string{
	"content-length", "transfer-encoding", "expect", "connection", "keep-alive",
	"te", "trailer", "upgrade", "http2-settings",
}

// ParseCIDR parses a trusted_proxies entry: a prefix like 10.0.0.0/8 or a
// single address (a /32 or /128).
func ParseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: expected a prefix like 10.0.0.0/8 or an address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// written reports whether the value at schema path was written in the source.
func (s *source) written(path string) bool {
	if s == nil {
		return false
	}
	_, ok := s.pos[path]
	return ok
}

// validAddrPort reports whether s is an ip:port with a port from 1 to 65535 (port 0
// names no server: a connect to it is always refused).
func validAddrPort(s string) bool {
	a, err := netip.ParseAddrPort(s)
	return err == nil && a.Port() != 0
}

// isPortZero reports whether s is an ip:port whose port is 0, which a
// listener may name (any free port) but a connection may not.
func isPortZero(s string) bool {
	ap, err := netip.ParseAddrPort(s)
	return err == nil && ap.Port() == 0
}

// reflectValue returns the addressable value p points to.
func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
