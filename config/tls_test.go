package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"golang.org/x/crypto/ocsp"
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

// rsaCert writes a self-signed RSA certificate and its key to dir.
func rsaCert(t *testing.T, dir string) testcert.Files {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"rsa.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	f := testcert.Files{Cert: filepath.Join(dir, "rsa.pem"), Key: filepath.Join(dir, "rsa.key")}
	os.WriteFile(f.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(f.Key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	return f
}

// TestTLSCipherSuitesValidation: cipher_suites that leave TLS 1.2 clients no
// suite are refused at their position instead of failing every such handshake
// at run time: a TLS 1.3 suite's name (crypto/tls lists it among its suites,
// but only TLS 1.2 suites are configurable, so a list of it alone refused
// every TLS 1.2 client), and a list without a suite a certificate's key can
// sign for (only ECDHE_RSA suites with an ECDSA certificate, or an acme one).
// With min_version "1.3" the list is not used and not checked against keys.
func TestTLSCipherSuitesValidation(t *testing.T) {
	ec := localhostCert(t)
	rs := rsaCert(t, t.TempDir())
	doc := func(certs []testcert.Files, extra string) string {
		s := "servers:\n  - listen: [\"127.0.0.1:0\"]\n    routes: [{ respond: { status: 204 } }]\n    tls:\n      certificates:\n"
		for _, f := range certs {
			s += fmt.Sprintf("        - { cert: %s, key: %s }\n", f.Cert, f.Key)
		}
		return s + extra
	}
	both := []testcert.Files{ec, rs}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"tls 1.3 suite", doc(both, "      cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n"),
			`a.yaml:8:64: servers[0].tls.cipher_suites[1]: "TLS_AES_128_GCM_SHA256" is a TLS 1.3 suite`},
		{"no suite for the rsa key", doc(both, "      cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n"),
			"a.yaml:8:22: servers[0].tls.cipher_suites: no suite listed can be used with the RSA key of " + rs.Cert},
		{"no suite for the ecdsa key", doc([]testcert.Files{ec}, "      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"),
			"servers[0].tls.cipher_suites: no suite listed can be used with the ECDSA key of " + ec.Cert},
		{"no suite for the acme key", "servers:\n  - listen: [\"127.0.0.1:0\"]\n    routes: [{ respond: { status: 204 } }]\n    tls:\n      acme: { domains: [a.b], storage: /tmp/x }\n      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n",
			"no suite listed can be used with the ECDSA key of the acme certificate"},
	} {
		_, err := Parse("a.yaml", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, ok := range []string{
		doc(both, "      cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n"),
		doc([]testcert.Files{ec}, "      min_version: \"1.3\"\n      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"),
		doc(both, ""),
	} {
		if _, err := Parse("a.yaml", []byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestOCSPStapleValidation: an ocsp_staple file that clients could not use is
// refused at its position, where only its existence used to be checked (and
// garbage was stapled to every handshake): bytes that are not an OCSP
// response, a non-successful response ("tryLater"), the response of another
// certificate, one that says the certificate is revoked. A Good response of
// the certificate is accepted.
func TestOCSPStapleValidation(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ca.Issue("a", "localhost")
	other, _ := ca.Issue("b", "localhost")
	file := func(name string, b []byte, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	later := time.Now().Add(time.Hour)
	b, err := ca.OCSP(f, ocsp.Good, later)
	good := file("good.der", b, err)
	b, err = ca.OCSP(other, ocsp.Good, later)
	foreign := file("other.der", b, err)
	b, err = ca.OCSP(f, ocsp.Revoked, later)
	revoked := file("revoked.der", b, err)
	doc := func(staple string) string {
		return fmt.Sprintf("servers:\n  - listen: [\"127.0.0.1:0\"]\n    routes: [{ respond: { status: 204 } }]\n    tls:\n      certificates:\n        - cert: %s\n          key: %s\n          ocsp_staple: %s\n", f.Cert, f.Key, staple)
	}
	if _, err := Parse("a.yaml", []byte(doc(good))); err != nil {
		t.Fatalf("a good response: %v", err)
	}
	for name, tc := range map[string]struct{ file, want string }{
		"garbage":  {file("garbage.der", []byte("not DER"), nil), "is not an OCSP response for the certificate"},
		"no body":  {file("nobody.der", []byte("\x30\x03\x0a\x01\x00"), nil), "is not an OCSP response for the certificate"},
		"tryLater": {file("later.der", []byte("\x30\x03\x0a\x01\x03"), nil), "is not an OCSP response for the certificate"},
		"foreign":  {foreign, "is the OCSP response of certificate serial 3, not of the certificate's (2)"},
		"revoked":  {revoked, "says the certificate was revoked at"},
		"no file":  {filepath.Join(dir, "missing.der"), "no such file"},
	} {
		_, err := Parse("a.yaml", []byte(doc(tc.file)))
		if err == nil || !strings.Contains(err.Error(), "a.yaml:8:24: servers[0].tls.certificates[0].ocsp_staple: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one at a.yaml:8:24 with %q", name, err, tc.want)
		}
	}
}

// TestCertificateErrorPositions: a certificate that does not load is reported
// at the field at fault: a key that is missing, is not a key or does not match
// the certificate at "key" (as nginx reports ssl_certificate_key), a missing or
// unparsable certificate at "cert". Every one used to point at "cert".
func TestCertificateErrorPositions(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ca.Issue("a", "localhost")
	b, _ := ca.Issue("b", "localhost")
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct{ cert, key, at, want string }{
		{a.Cert, b.Key, "a.yaml:7:16: servers[0].tls.certificates[0].key: ", "private key does not match public key"},
		{a.Cert, missing, "a.yaml:7:16: servers[0].tls.certificates[0].key: ", "no such file"},
		{a.Cert, a.Cert, "a.yaml:7:16: servers[0].tls.certificates[0].key: ", "rather than a key"},
		{missing, a.Key, "a.yaml:6:17: servers[0].tls.certificates[0].cert: ", "no such file"},
		{a.Key, a.Cert, "a.yaml:6:17: servers[0].tls.certificates[0].cert: ", "PEM inputs may have been switched"},
	} {
		doc := fmt.Sprintf("servers:\n  - listen: [\"127.0.0.1:0\"]\n    routes: [{ respond: { status: 204 } }]\n    tls:\n      certificates:\n        - cert: %s\n          key: %s\n", tc.cert, tc.key)
		_, err := Parse("a.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.at) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cert %s, key %s: error %v, want %q at %q", filepath.Base(tc.cert), filepath.Base(tc.key), err, tc.want, tc.at)
		}
	}
}

// TestVerifyClientValidation: verify_client takes nginx's ssl_verify_client
// values (on and off unquoted too, which YAML 1.1 would read as booleans);
// "on" and "optional" need client_ca and say so at the field's position, as
// does a misspelled value; client_ca alone means "on", nothing means "off".
func TestVerifyClientValidation(t *testing.T) {
	f := localhostCert(t)
	doc := func(extra string) string {
		return fmt.Sprintf("servers:\n  - listen: [\"127.0.0.1:0\"]\n    tls:\n      certificates: [{ cert: %s, key: %s }]\n%s    routes: [{ respond: { status: 204 } }]\n", f.Cert, f.Key, extra)
	}
	ca := filepath.Join(filepath.Dir(f.Cert), "ca.pem")
	for extra, want := range map[string]string{
		"":                                      VerifyOff,
		"      client_ca: " + ca + "\n":         VerifyOn,
		"      verify_client: optional_no_ca\n": VerifyOptionalNoCA,
		"      client_ca: " + ca + "\n      verify_client: off\n":      VerifyOff,
		"      client_ca: " + ca + "\n      verify_client: optional\n": VerifyOptional,
		"      client_ca: " + ca + "\n      verify_client: on\n":       VerifyOn,
	} {
		c, err := Parse("a.yaml", []byte(doc(extra)))
		if err != nil {
			t.Fatalf("%q: %v", extra, err)
		}
		if got := c.Servers[0].TLS.ClientVerify(); got != want {
			t.Errorf("%q: mode %q, want %q", extra, got, want)
		}
	}
	for extra, want := range map[string]string{
		"      verify_client: on\n":                                   `a.yaml:5:22: servers[0].tls.verify_client: verify_client "on" needs client_ca`,
		"      verify_client: optional\n":                             `a.yaml:5:22: servers[0].tls.verify_client: verify_client "optional" needs client_ca`,
		"      client_ca: " + ca + "\n      verify_client: optionl\n": `a.yaml:6:22: servers[0].tls.verify_client: invalid value "optionl": expected one of on, optional, optional_no_ca, off (did you mean "optional"?)`,
	} {
		_, err := Parse("a.yaml", []byte(doc(extra)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %s", extra, err, want)
		}
	}
}
