package tlsterm

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/crypto/ocsp"
)

// TestSelectorChooses: exact names and wildcards of one label, without case (an
// empty or "*" label is no name a wildcard covers: ".example.test" used to get
// the "*.example.test" certificate, also under unknown_sni: reject);
// unknown names get the default or nothing (unrecognized_name) by policy; no
// name, and an IP address sent as the name (RFC 6066 permits only host names,
// some clients send one), always get the default.
func TestSelectorChooses(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var files []CertFiles
	for _, c := range [][]string{{"default", "localhost", "127.0.0.1", "::1"}, {"exact", "www.example.test"}, {"wild", "*.example.test"}} {
		f, err := ca.Issue(c[0], c[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, CertFiles{Cert: f.Cert, Key: f.Key})
	}
	certs, err := LoadCerts(files)
	if err != nil {
		t.Fatal(err)
	}
	def, exact, wild := certs.list[0], certs.list[1], certs.list[2]
	for _, reject := range []bool{false, true} {
		s := &Selector{Static: certs, RejectUnknown: reject}
		unknown := def
		if reject {
			unknown = nil
		}
		for name, want := range map[string]*tls.Certificate{
			"":                 def,
			"127.0.0.1":        def,
			"::1":              def,
			"[::1]":            def,
			"10.1.2.3":         def,
			"localhost":        def,
			"WWW.Example.TEST": exact,
			"a.example.test":   wild,
			"A.EXAMPLE.TEST":   wild,
			"a.b.example.test": unknown,
			"example.test":     unknown,
			"other.test":       unknown,
			".example.test":    unknown, // a wildcard covers one label, never an empty one
			"*.example.test":   unknown,
		} {
			got, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
			if err != nil || got != want {
				t.Errorf("reject=%v %q: got %p (%v), want %p", reject, name, got, err, want)
			}
		}
	}
}

// TestStaleStapleDropped: an OCSP staple is sent until the response's
// nextUpdate and not after it (a stale response is no evidence a client may
// accept), by SNI name, wildcard and as the default, in real handshakes; the
// certificate itself keeps serving. It used to be stapled for good.
func TestStaleStapleDropped(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ca.Issue("srv", "localhost", "*.example.test")
	until := time.Now().Add(time.Second)
	resp, err := ca.OCSP(f, ocsp.Good, until)
	if err != nil {
		t.Fatal(err)
	}
	staple := filepath.Join(dir, "ocsp.der")
	os.WriteFile(staple, resp, 0o644)
	certs, err := LoadCerts([]CertFiles{{Cert: f.Cert, Key: f.Key, OCSP: staple}})
	if err != nil {
		t.Fatal(err)
	}
	addr := handshakeServer(t, certs)
	stapled := func(name string) []byte {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true}) // other.test gets the default, which does not cover it
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().OCSPResponse
	}
	names := []string{"localhost", "a.example.test", "other.test"}
	if time.Now().Before(until) {
		for _, n := range names {
			if !bytes.Equal(stapled(n), resp) {
				t.Errorf("%s: the fresh staple was not sent", n)
			}
		}
	}
	testkit.WaitFor(t, "the staple's nextUpdate", func() bool { return time.Now().After(until) })
	for _, n := range names {
		if got := stapled(n); got != nil {
			t.Errorf("%s: a stale staple was sent (%d bytes)", n, len(got))
		}
	}
}

// TestDualCertificates: an RSA certificate listed beside an ECDSA one for the
// same names (nginx's several ssl_certificate) serves the clients that cannot
// use ECDSA: a TLS 1.2 client offering only ECDHE_RSA suites, and a TLS 1.3
// client offering only RSA-PSS signatures (openssl s_client -sigalgs), by
// name, by wildcard and as the default; other clients keep the first listed.
// The RSA one used to be unreachable, so those handshakes failed.
func TestDualCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ca.Issue("ec", "localhost", "*.example.test")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost", "*.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	rsaFiles := CertFiles{Cert: filepath.Join(dir, "rsa.pem"), Key: filepath.Join(dir, "rsa.key")}
	os.WriteFile(rsaFiles.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(rsaFiles.Key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	certs, err := LoadCerts([]CertFiles{{Cert: ec.Cert, Key: ec.Key}, rsaFiles})
	if err != nil {
		t.Fatal(err)
	}
	addr := handshakeServer(t, certs)
	keyOf := func(name string, suites []uint16) string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: suites})
		if err != nil {
			return "failed: " + err.Error()
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].PublicKeyAlgorithm.String()
	}
	for _, name := range []string{"localhost", "a.example.test", "unknown.test", ""} {
		if got := keyOf(name, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}); got != "RSA" {
			t.Errorf("%q, TLS 1.2 with ECDHE_RSA suites only: %s, want RSA", name, got)
		}
		if got := keyOf(name, nil); got != "ECDSA" {
			t.Errorf("%q, any suite: %s, want ECDSA (the first listed)", name, got)
		}
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed (scripts/test.sh installs it)")
	}
	out, _ := exec.Command("openssl", "s_client", "-connect", addr, "-servername", "localhost", "-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256").CombinedOutput()
	if !strings.Contains(string(out), "Peer signature type: RSA-PSS") {
		t.Errorf("TLS 1.3 with RSA-PSS signatures only:\n%s", out)
	}
}

// handshakeServer serves TLS handshakes with certificates chosen from certs on
// a 127.0.0.1 port until the test ends, and returns its address.
func handshakeServer(t *testing.T, certs *Certs) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", (&Selector{Static: certs}).Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	return l.Addr().String()
}
