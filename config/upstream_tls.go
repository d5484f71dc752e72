package config

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// UpstreamTLS configures the TLS connections to an upstream's https:// servers
// (see docs/proxy.md#tls-to-upstreams).
type UpstreamTLS struct {
	// CA is a PEM bundle that verifies the servers instead of the system's roots.
	CA string `yaml:"ca" conf:"path"`
	// ServerName is sent with SNI, verified in the servers' certificates and
	// sent as Host; empty: each server's IP address is verified, no SNI is sent.
	ServerName string `yaml:"server_name"`
	// Cert and Key are a client certificate (PEM) presented to the servers.
	Cert string `yaml:"cert" conf:"path"`
	Key  string `yaml:"key" conf:"path"`
	// InsecureSkipVerify accepts any server certificate (tests only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// ALPN lists the protocols offered with ALPN: "http/1.1" (the default), or
	// none (an empty list: no ALPN extension is sent).
	ALPN []string `yaml:"alpn"`
}

// UpstreamALPN is the only protocol an upstream connection may offer with ALPN:
// the proxy speaks HTTP/1.1 to upstreams.
const UpstreamALPN = "http/1.1"

// SetDefaults sets every field of t to its default: verification on, system
// roots, ALPN offering http/1.1.
func (t *UpstreamTLS) SetDefaults() { *t = UpstreamTLS{ALPN: []string{UpstreamALPN}} }

// Endpoint splits a server address into its ip:port and whether it is written
// https:// (http:// is accepted and means plain).
func (s *UpstreamServer) Endpoint() (addr string, https bool) {
	if a, ok := strings.CutPrefix(s.Address, "https://"); ok {
		return a, true
	}
	return strings.TrimPrefix(s.Address, "http://"), false
}

// upstreamTLS checks the TLS of one upstream: its servers are all https:// or
// none is, a tls section goes with https:// servers, and its files load.
func (v *validator) upstreamTLS(u *Upstream, path, serversKey string) {
	n := 0
	for i := range u.Servers {
		if _, https := u.Servers[i].Endpoint(); https {
			n++
		}
	}
	if n > 0 && n < len(u.Servers) {
		v.errorf(joinPath(path, serversKey), "mixes https:// and plain servers: an upstream's servers are all https:// or none is")
	}
	t := u.TLS
	if t == nil {
		return
	}
	p := joinPath(path, "tls")
	if n == 0 {
		v.errorf(p, "tls applies to https:// servers; write the servers as https://ip:port")
	}
	if t.CA != "" {
		if _, err := ClientCAPool(t.CA); err != nil {
			v.errorf(joinPath(p, "ca"), "%v", err)
		}
	}
	switch {
	case t.Cert != "" && t.Key == "":
		v.errorf(joinPath(p, "key"), "cert needs key")
	case t.Cert == "" && t.Key != "":
		v.errorf(joinPath(p, "cert"), "key needs cert")
	case t.Cert != "":
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			v.errorf(joinPath(p, "cert"), "loading %s with key %s: %v", t.Cert, t.Key, err)
		}
	}
	for i, proto := range t.ALPN {
		if proto != UpstreamALPN {
			v.errorf(fmt.Sprintf("%s.alpn[%d]", p, i), "%q: the proxy speaks HTTP/1.1 to upstreams, so the only protocol it can offer is %q (an empty list offers none)", proto, UpstreamALPN)
		}
	}
	if t.ServerName != "" && !validHostname(t.ServerName) {
		v.errorf(joinPath(p, "server_name"), "%q is not a DNS name", t.ServerName)
	}
}
