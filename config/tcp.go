package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/gale-server/gale/internal/os/listenaddr"
	"go.yaml.in/yaml/v3"
)

// TCP is one layer-4 proxy (a top-level `tcp:` entry): connections accepted on
// Listen are relayed, byte for byte, to a server of an upstream group. The group
// is Upstreams, or the entry of SNI that matches the server name of the client's
// TLS ClientHello (TLS passthrough: gale does not terminate TLS).
type TCP struct {
	// Listen holds host:port addresses; at least one is required.
	Listen []string `yaml:"listen"`
	// Upstream names a group of the top-level upstreams mapping (the same groups
	// HTTP proxy routes use): connections are relayed to its servers, by weight.
	Upstream string `yaml:"upstream"`
	// Upstreams are the servers (IP:port or localhost:port) connections are relayed
	// to, in round-robin order, instead of a named group; a server that refuses is
	// skipped for the next one.
	Upstreams []string `yaml:"upstreams"`
	// Balance is how the server of each connection is chosen: an upstream
	// balance method (weights do not apply; keyed methods hash the client's
	// address).
	Balance string `yaml:"balance" conf:"enum=round_robin|weighted_round_robin|least_conn|ip_hash|hash|maglev|p2c_ewma|random|first"`
	// Timeouts bounds connecting, the preamble and idle relays.
	Timeouts TCPTimeouts `yaml:"timeouts"`
	// MaxConns bounds the client connections relayed at once; 0 means no limit.
	MaxConns int `yaml:"max_conns"`
	// AcceptProxy lists the networks (CIDR or single addresses) whose connections
	// must start with a PROXY protocol v1 or v2 header; their client address is
	// taken from it. Connections from elsewhere are relayed as they are.
	AcceptProxy []string `yaml:"accept_proxy"`
	// SendProxy is "off", "v1" or "v2": the PROXY protocol header sent to the
	// upstream before the client's bytes.
	SendProxy string `yaml:"send_proxy" conf:"enum=off|v1|v2"`
	// SNI routes TLS connections by server name: keys are names ("a.example"),
	// wildcards ("*.b.example", any name below b.example) or "default"; values
	// name an upstream group or list servers like Upstreams. Without a match, and
	// without default, the connection is closed.
	SNI map[string]TCPRoute `yaml:"sni"`
	// SpliceAfter is how many bytes a direction of a relay moves by copying
	// before it switches to splice(2); 0 never splices.
	SpliceAfter int64 `yaml:"splice_after" conf:"size"`
}

// TCPTimeouts bounds the stages of a relayed connection.
type TCPTimeouts struct {
	// Connect is the time allowed to connect to one upstream server.
	Connect time.Duration `yaml:"connect"`
	// Preamble is the time allowed for the client's PROXY header and TLS
	// ClientHello, when the entry reads them.
	Preamble time.Duration `yaml:"preamble"`
	// Idle closes a relay when neither direction has moved a byte for it.
	Idle time.Duration `yaml:"idle"`
}

// Values of TCP.SendProxy.
const (
	SendProxyOff = "off"
	SendProxyV1  = "v1"
	SendProxyV2  = "v2"
)

// TCPRoute is the target of an SNI route: a named upstream group or a list of
// servers. In YAML it is a name ("db"), a list of addresses, or one address.
type TCPRoute struct {
	// Upstream names a group of the top-level upstreams mapping.
	Upstream string
	// Servers lists the servers (IP:port or localhost:port) instead.
	Servers []string
}

var _ nodeDecoder = (*TCPRoute)(nil)
var _ nodeEncoder = TCPRoute{}

// decodeNode accepts a scalar (a group name) or a sequence of addresses.
func (r *TCPRoute) decodeNode(d *decoder, n *yaml.Node, path string) {
	*r = TCPRoute{}
	switch {
	case n.Kind == yaml.ScalarNode && strings.Contains(n.Value, ":"):
		r.Servers = []string{n.Value} // an address (names are tokens, without ':')
	case n.Kind == yaml.ScalarNode && !isNull(n):
		r.Upstream = n.Value
	case n.Kind == yaml.SequenceNode:
		d.value(n, reflectValue(&r.Servers), path, options{})
	default:
		d.errorf(n, path, "expected the name of an upstream or a list of servers like [\"127.0.0.1:443\"], got %s", describe(n))
	}
}

// encodeNode writes the name, or the list of servers. It has a value receiver
// because map values (SNI routes) are not addressable.
func (r TCPRoute) encodeNode() *yaml.Node {
	if r.Upstream != "" {
		return scalar("!!str", r.Upstream)
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range r.Servers {
		seq.Content = append(seq.Content, scalar("!!str", s))
	}
	return seq
}

// SetDefaults sets every field of t to its default; Listen and Upstreams stay empty.
func (t *TCP) SetDefaults() {
	*t = TCP{
		Balance:     "round_robin",
		SendProxy:   SendProxyOff,
		SNI:         map[string]TCPRoute{},
		SpliceAfter: 256 << 10, // measured: docs/l4.md "Splice or copy"
		Timeouts:    TCPTimeouts{Connect: 5 * time.Second, Preamble: 10 * time.Second, Idle: time.Hour},
	}
}

// ParseCIDRs parses accept_proxy entries: prefixes ("10.0.0.0/8") or single
// addresses ("192.0.2.7", a /32 or /128).
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("invalid network %q: expected a CIDR prefix like 10.0.0.0/8 or an IP address", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ParseUpstream parses one upstream server address: an IP literal or localhost
// with a port from 1 to 65535 (host names are not resolved).
func ParseUpstream(s string) (netip.AddrPort, error) {
	ap, err := listenaddr.Resolve(s)
	if err != nil || ap.Port() == 0 || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("invalid upstream %q: expected an IP address or localhost and a port from 1 to 65535, like 127.0.0.1:5432 (host names are not resolved)", s)
	}
	return ap, nil
}

// SNIKeys returns the keys of m sorted, so that problems are reported in a
// stable order.
func SNIKeys(m map[string]TCPRoute) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tcp checks the tcp entries; used holds the listen addresses of the servers so
// that an entry cannot take one of theirs.
func (v *validator) tcp(entries []TCP, used map[netip.AddrPort]string) {
	for i := range entries {
		t := &entries[i]
		tp := fmt.Sprintf("tcp[%d]", i)
		if len(t.Listen) == 0 {
			v.errorf(joinPath(tp, "listen"), "at least one listen address is required")
		}
		for j, addr := range t.Listen {
			lp := fmt.Sprintf("%s.listen[%d]", tp, j)
			ap, err := listenaddr.Resolve(addr)
			if err != nil {
				v.errorf(lp, "%v", err)
				continue
			}
			for u, where := range used {
				if listenaddr.Overlap(ap, u) {
					v.errorf(lp, "address %s overlaps a listen address of %s", addr, where)
				}
			}
			used[ap] = lp
		}
		v.upstreamList(t.Upstreams, joinPath(tp, "upstreams"))
		if t.Upstream != "" {
			v.upstreamName(t.Upstream, joinPath(tp, "upstream"))
		}
		seen := map[string]string{} // route keys as they are compared: lower case, no trailing dot
		for _, k := range SNIKeys(t.SNI) {
			kp := joinPath(joinPath(tp, "sni"), k)
			if name := strings.TrimPrefix(k, "*."); k != "default" && !validHostname(name) {
				v.errorf(kp, "invalid server name %q: expected a DNS name, *.name or default", k)
			} else if k != "default" && strings.EqualFold(strings.TrimSuffix(k, "."), "default") {
				v.errorf(kp, "the default route is written default, in lower case (%q would be a server name)", k)
			} else if k != "default" {
				norm := strings.TrimSuffix(strings.ToLower(k), ".")
				if prev, ok := seen[norm]; ok {
					v.errorf(kp, "server name %q is %q again: names are compared without case and without a trailing dot", k, prev)
				}
				seen[norm] = k
			}
			switch r := t.SNI[k]; {
			case r.Upstream != "":
				v.upstreamName(r.Upstream, kp)
			case len(r.Servers) == 0:
				v.errorf(kp, "at least one upstream is required")
			default:
				v.upstreamList(r.Servers, kp)
			}
		}
		inline := len(t.Upstreams) > 0
		for _, r := range t.SNI {
			inline = inline || len(r.Servers) > 0
		}
		if !inline && t.Balance != "round_robin" && v.c.src.written(joinPath(tp, "balance")) {
			v.errorf(joinPath(tp, "balance"), "balance applies to server lists written in the entry; a named upstream is balanced by its own balance")
		}
		_, def := t.SNI["default"]
		hasDefault := len(t.Upstreams) > 0 || t.Upstream != ""
		switch {
		case len(t.Upstreams) > 0 && t.Upstream != "":
			v.errorf(joinPath(tp, "upstream"), "tcp takes upstream (a name) or upstreams (a list of servers), not both")
		case !hasDefault && len(t.SNI) == 0:
			v.errorf(tp, "upstream, upstreams or sni is required")
		case hasDefault && def:
			key := "upstreams"
			if t.Upstream != "" {
				key = "upstream"
			}
			v.errorf(joinPath(tp, key), "both %s and sni.default are set; %s is the default route of sni, keep one", key, key)
		}
		if t.MaxConns < 0 {
			v.errorf(joinPath(tp, "max_conns"), "must be 0 (no limit) or more, got %d", t.MaxConns)
		}
		if t.SpliceAfter < 0 {
			v.errorf(joinPath(tp, "splice_after"), "must be 0 or more")
		}
		for _, d := range []struct {
			name string
			val  time.Duration
		}{{"connect", t.Timeouts.Connect}, {"preamble", t.Timeouts.Preamble}, {"idle", t.Timeouts.Idle}} {
			if d.val <= 0 {
				v.errorf(joinPath(joinPath(tp, "timeouts"), d.name), "must be positive, got %s", d.val)
			}
		}
		if _, err := ParseCIDRs(t.AcceptProxy); err != nil {
			v.errorf(joinPath(tp, "accept_proxy"), "%v", err)
		}
	}
}

// upstreamName checks that name is a group of the top-level upstreams mapping.
func (v *validator) upstreamName(name, path string) {
	if u, ok := v.c.Upstreams[name]; ok {
		v.tcpGroupLiterals(u, name, path)
		return
	}
	names := make([]string, 0, len(v.c.Upstreams))
	for n := range v.c.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	v.errorf(path, "no upstream named %q in upstreams%s", name, didYouMean(name, names))
}

// upstreamList checks a list of upstream addresses.
func (v *validator) upstreamList(list []string, path string) {
	for k, s := range list {
		if _, err := ParseUpstream(s); err != nil {
			v.errorf(fmt.Sprintf("%s[%d]", path, k), "%v", err)
		}
	}
}

// serverAddrs returns the resolvable addresses HTTP is served on: the servers'
// listen and redirect_http addresses and the admin listener's, each with the
// path that names it. A tcp entry may take none of them: two listeners of one
// address would split its connections between them.
func (c *Config) serverAddrs() map[netip.AddrPort]string {
	used := map[netip.AddrPort]string{}
	add := func(addr, path string) {
		if ap, err := listenaddr.Resolve(addr); err == nil {
			used[ap] = path
		}
	}
	for i, s := range c.Servers {
		for j, addr := range s.Listen {
			add(addr, fmt.Sprintf("servers[%d].listen[%d]", i, j))
		}
		if s.TLS != nil {
			for j, addr := range s.TLS.RedirectHTTP {
				add(addr, fmt.Sprintf("servers[%d].tls.redirect_http[%d]", i, j))
			}
		}
	}
	if c.Admin.Listen != "" {
		add(c.Admin.Listen, "admin.listen")
	}
	return used
}
