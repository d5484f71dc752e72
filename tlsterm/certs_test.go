package tlsterm

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
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
	stapled := func(name string) []byte {
		t.Helper()
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{ServerName: name, InsecureSkipVerify: true}) // other.test gets the default, which does not cover it
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
