package tlsterm

import (
	"crypto/tls"
	"testing"

	"github.com/gale-server/gale/internal/testcert"
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
