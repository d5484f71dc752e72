package tlsterm

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDNLikeOpenSSL: $ssl_client_s_dn is what OpenSSL (and so nginx) prints
// for the subject in RFC 2253 form, checked against openssl x509 -nameopt
// RFC2253 for names with emailAddress, DC and UID (Go's pkix.Name.String
// prints those as OIDs, and out of the certificate's order), a multi-valued
// RDN, RFC 2253's special characters, leading and trailing spaces, a leading
// '#', UTF-8 and control characters (escaped in hex: the value goes into a
// request field), and an unknown attribute type.
func TestDNLikeOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed (scripts/test.sh installs it)")
	}
	atv := func(oid asn1.ObjectIdentifier, v string) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: oid, Value: v}
	}
	var (
		cn    = asn1.ObjectIdentifier{2, 5, 4, 3}
		o     = asn1.ObjectIdentifier{2, 5, 4, 10}
		ou    = asn1.ObjectIdentifier{2, 5, 4, 11}
		c     = asn1.ObjectIdentifier{2, 5, 4, 6}
		email = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
		dc    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
		uid   = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
		odd   = asn1.ObjectIdentifier{1, 2, 3, 4}
	)
	names := []pkix.RDNSequence{
		{{atv(dc, "com")}, {atv(dc, "example")}, {atv(o, "Org, Inc.")}, {atv(cn, "client one")}, {atv(email, "one@example.com")}, {atv(uid, "u1")}},
		{{atv(c, "US")}, {atv(ou, "a"), atv(ou, "b")}, {atv(cn, `x+y "q" <a>;b\c=d`)}},
		{{atv(cn, " lead and trail ")}, {atv(o, "#hash")}},
		{{atv(cn, "José Ünïcode")}, {atv(o, "line\r\nX-Admin: 1")}},
		{{atv(odd, "custom")}, {atv(cn, "after unknown")}},
	}
	dir := t.TempDir()
	ca, caKey := certFrom(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	for i, n := range names {
		raw, err := asn1.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := certFrom(t, &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), RawSubject: raw, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}, ca, caKey)
		f := filepath.Join(dir, "c.pem")
		os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o644)
		out, err := exec.Command("openssl", "x509", "-in", f, "-noout", "-subject", "-nameopt", "RFC2253").CombinedOutput()
		if err != nil {
			t.Fatalf("openssl: %v %s", err, out)
		}
		want := strings.TrimSuffix(strings.TrimPrefix(string(out), "subject="), "\n")
		if got := dnString(leaf.RawSubject); got != want {
			t.Errorf("name %d:\n got %s\nwant %s", i, got, want)
		}
		if got := dnString(leaf.RawIssuer); got != "CN=CA" {
			t.Errorf("issuer %q", got)
		}
	}
}
