package config

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testcert"
)

// localhostCert issues a certificate for localhost from a new test CA.
func localhostCert(t *testing.T) testcert.Files {
	t.Helper()
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.Issue("a", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestTLSProtocols: h2 is accepted with a TLS section and offered only when
// listed; h2c and a list without http1 are refused on a TLS server.
func TestTLSProtocols(t *testing.T) {
	f := localhostCert(t)
	base := fmt.Sprintf("servers:\n  - listen: [\"127.0.0.1:0\"]\n    tls: { certificates: [{ cert: %s, key: %s }] }\n    routes: [{ respond: { status: 204 } }]\n", f.Cert, f.Key)
	c, err := Parse("a.yaml", []byte(base))
	if err != nil || c.Servers[0].HasProtocol(ProtoH2) {
		t.Fatalf("default: protocols %v, err %v", c.Servers[0].Protocols, err)
	}
	c, err = Parse("a.yaml", []byte(base+"    protocols: [http1, h2]\n"))
	if err != nil || !c.Servers[0].HasProtocol(ProtoH2) {
		t.Fatalf("h2: protocols %v, err %v", c.Servers[0].Protocols, err)
	}
	for list, want := range map[string]string{
		"[http1, h2c]": `servers[0].protocols: "h2c" is cleartext HTTP/2: over TLS list "h2"`,
		"[h2]":         `servers[0].protocols: must include "http1": over TLS it serves the clients that do not choose "h2" with ALPN`,
		"[h2c]":        `servers[0].protocols: "h2c" is cleartext HTTP/2`,
	} {
		_, err := Parse("a.yaml", []byte(base+"    protocols: "+list+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("protocols %s: error %v, want %q", list, err, want)
		}
	}
}

// TestACMEValidation: an acme section replaces the certificates, and its bad
// values are reported at their file:line:column.
func TestACMEValidation(t *testing.T) {
	base := "servers:\n  - listen: [\"127.0.0.1:0\"]\n    routes: [{ respond: { status: 204 } }]\n    tls:\n      acme:\n"
	c, err := Parse("a.yaml", []byte(base+"        domains: [example.com]\n        storage: /tmp/acme\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Servers[0].TLS.ACME; a.CA != DefaultACMECA || len(a.Challenges) != 2 || c.Servers[0].TLS.UnknownSNI != "default" {
		t.Fatalf("defaults: %+v", a)
	}
	for body, want := range map[string]string{
		"        domains: []\n":                                                  "a.yaml:6:18: servers[0].tls.acme.domains: at least one domain is required",
		"        domains: ['*.example.com']\n":                                   `a.yaml:6:19: servers[0].tls.acme.domains[0]: "*.example.com" is not a DNS name`,
		"        domains: [a.b]\n        ca: ftp://x\n":                          `a.yaml:7:13: servers[0].tls.acme.ca: "ftp://x" is not an http(s) directory URL`,
		"        domains: [a.b]\n        challenges: [dns-01]\n":                 `a.yaml:7:22: servers[0].tls.acme.challenges[0]: unknown challenge type "dns-01"`,
		"        domains: [a.b]\n        retry_min: 1h\n        retry_max: 1m\n": "retry_max at least retry_min",
		"        domains: [a.b]\n        email: nobody\n":                        `servers[0].tls.acme.email: "nobody" is not an email address`,
	} {
		_, err := Parse("a.yaml", []byte(base+body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
	if _, err := Parse("a.yaml", []byte(base+"        domains: [a.b]\n    \n")); err != nil {
		t.Fatal(err)
	}
	_, err = Parse("a.yaml", []byte("servers:\n  - listen: [\"127.0.0.1:0\"]\n    routes: [{ respond: { status: 204 } }]\n    tls: { unknown_sni: drop }\n"))
	if err == nil || !strings.Contains(err.Error(), "unknown_sni") {
		t.Fatalf("unknown_sni: drop: %v", err)
	}
}

// TestUpstreamTLSValidation: https:// servers parse, a group cannot mix them
// with plain ones, a tls section needs them, and its files must load.
func TestUpstreamTLSValidation(t *testing.T) {
	base := "servers:\n  - listen: [\"127.0.0.1:0\"]\n    routes: [{ proxy: { upstream: o } }]\nupstreams:\n  o:\n"
	c, err := Parse("a.yaml", []byte(base+"    servers: [\"https://127.0.0.1:8443\"]\n    tls: { server_name: api.internal }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a, https := c.Upstreams["o"].Servers[0].Endpoint(); a != "127.0.0.1:8443" || !https {
		t.Fatalf("endpoint %q %v", a, https)
	}
	if alpn := c.Upstreams["o"].TLS.ALPN; len(alpn) != 1 || alpn[0] != "http/1.1" {
		t.Fatalf("default alpn %q, want [http/1.1]", alpn)
	}
	c, err = Parse("a.yaml", []byte(base+"    servers: [\"https://127.0.0.1:8443\"]\n    tls: { alpn: [] }\n"))
	if err != nil || len(c.Upstreams["o"].TLS.ALPN) != 0 {
		t.Fatalf("alpn: []: %v %v", err, c.Upstreams["o"].TLS.ALPN)
	}
	for body, want := range map[string]string{
		"    servers: [\"https://127.0.0.1:1\", \"127.0.0.1:2\"]\n":                   "upstreams.o.servers: mixes https:// and plain servers",
		"    servers: [\"127.0.0.1:1\"]\n    tls: { server_name: a.b }\n":             "upstreams.o.tls: tls applies to https:// servers",
		"    servers: [\"https://127.0.0.1:1\"]\n    tls: { ca: /nonexistent }\n":     "upstreams.o.tls.ca: open /nonexistent",
		"    servers: [\"https://127.0.0.1:1\"]\n    tls: { cert: /x.pem }\n":         "upstreams.o.tls.key: cert needs key",
		"    servers: [\"https://127.0.0.1:1\"]\n    tls: { server_name: \"a b\" }\n": `upstreams.o.tls.server_name: "a b" is not a DNS name`,
		"    servers: [\"https://host:1\"]\n":                                         `invalid server address "https://host:1"`,
		"    servers: [\"https://127.0.0.1:1\"]\n    tls: { alpn: [http/1.1, h2] }\n": `a.yaml:7:29: upstreams.o.tls.alpn[1]: "h2": the proxy speaks HTTP/1.1`,
	} {
		_, err := Parse("a.yaml", []byte(base+body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
}

// TestTLSCurvesValidation: an unknown group name is reported at its position
// with a suggestion; OpenSSL's names and any case are accepted.
func TestTLSCurvesValidation(t *testing.T) {
	f := localhostCert(t)
	doc := func(curves string) string {
		return fmt.Sprintf("servers:\n  - listen: [\"127.0.0.1:0\"]\n    tls:\n      certificates: [{ cert: %s, key: %s }]\n      curves: %s\n    routes: [{ respond: { status: 204 } }]\n", f.Cert, f.Key, curves)
	}
	c, err := Parse("a.yaml", []byte(doc("[X25519, prime256v1, p384]")))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Servers[0].TLS.CurveIDs(); len(got) != 3 || got[0] != tls.X25519 || got[1] != tls.CurveP256 || got[2] != tls.CurveP384 {
		t.Fatalf("CurveIDs %v", got)
	}
	_, err = Parse("a.yaml", []byte(doc("[x25519, x2551]")))
	if err == nil || !strings.Contains(err.Error(), "a.yaml:5:") || !strings.Contains(err.Error(), `unknown key exchange group "x2551"`) || !strings.Contains(err.Error(), "x25519") {
		t.Fatalf("error %v", err)
	}
}
