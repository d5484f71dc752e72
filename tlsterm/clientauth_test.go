package tlsterm

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/server"
)

// certFrom issues a certificate with tmpl's fields, signed by issuer (self-signed
// when nil); it returns the certificate and its key.
func certFrom(t *testing.T, tmpl *x509.Certificate, issuer *x509.Certificate, issuerKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if issuer == nil {
		issuer, issuerKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// TestClientAuthCheck: the verification result of each kind of client
// certificate in each mode, as nginx's ssl_verify_client and $ssl_client_verify
// have it: optional_no_ca lets an unknown issuer through but not an expired
// certificate or one not meant for client authentication; a subject with a
// line break is escaped, so that it cannot split a request field sent upstream.
func TestClientAuthCheck(t *testing.T) {
	now := time.Now()
	ca, caKey := certFrom(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	leaf := func(serial int64, cn string, from, to time.Time, eku x509.ExtKeyUsage) *x509.Certificate {
		c, _ := certFrom(t, &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example"}}, NotBefore: from, NotAfter: to, ExtKeyUsage: []x509.ExtKeyUsage{eku}}, ca, caKey)
		return c
	}
	good := leaf(0xab, "client", now.Add(-time.Hour), now.Add(time.Hour), x509.ExtKeyUsageClientAuth)
	expired := leaf(3, "old", now.Add(-2*time.Hour), now.Add(-time.Hour), x509.ExtKeyUsageClientAuth)
	early := leaf(4, "new", now.Add(time.Hour), now.Add(2*time.Hour), x509.ExtKeyUsageClientAuth)
	serverOnly := leaf(5, "server", now.Add(-time.Hour), now.Add(time.Hour), x509.ExtKeyUsageServerAuth)
	otherRoot, otherKey := certFrom(t, &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "other root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	underOther, _ := certFrom(t, &x509.Certificate{SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "foreign"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, otherRoot, otherKey)
	self, _ := certFrom(t, &x509.Certificate{SerialNumber: big.NewInt(6), Subject: pkix.Name{CommonName: "me\r\nX-Admin: 1"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, nil, nil)

	type want struct{ verify, refuse string }
	cases := []struct {
		name               string
		certs              []*x509.Certificate
		on, optional, noCA want
	}{
		{"none", nil, want{"NONE", RefuseNoCert}, want{"NONE", ""}, want{"NONE", ""}},
		{"good", []*x509.Certificate{good}, want{"SUCCESS", ""}, want{"SUCCESS", ""}, want{"SUCCESS", ""}},
		{"expired", []*x509.Certificate{expired}, want{"FAILED:certificate has expired", RefuseCertError}, want{"FAILED:certificate has expired", RefuseCertError}, want{"FAILED:certificate has expired", RefuseCertError}},
		{"not yet valid", []*x509.Certificate{early}, want{"FAILED:certificate is not yet valid", RefuseCertError}, want{"FAILED:certificate is not yet valid", RefuseCertError}, want{"FAILED:certificate is not yet valid", RefuseCertError}},
		{"server only", []*x509.Certificate{serverOnly}, want{"FAILED:unsupported certificate purpose", RefuseCertError}, want{"FAILED:unsupported certificate purpose", RefuseCertError}, want{"FAILED:unsupported certificate purpose", RefuseCertError}},
		{"unknown issuer", []*x509.Certificate{underOther}, want{"FAILED:unable to get local issuer certificate", RefuseCertError}, want{"FAILED:unable to get local issuer certificate", RefuseCertError}, want{"FAILED:unable to get local issuer certificate", ""}},
		{"unknown root sent", []*x509.Certificate{underOther, otherRoot}, want{"FAILED:self-signed certificate in certificate chain", RefuseCertError}, want{"FAILED:self-signed certificate in certificate chain", RefuseCertError}, want{"FAILED:self-signed certificate in certificate chain", ""}},
		{"self-signed", []*x509.Certificate{self}, want{"FAILED:self-signed certificate", RefuseCertError}, want{"FAILED:self-signed certificate", RefuseCertError}, want{"FAILED:self-signed certificate", ""}},
	}
	for _, tc := range cases {
		for mode, w := range map[ClientVerify]want{VerifyOn: tc.on, VerifyOptional: tc.optional, VerifyOptionalNoCA: tc.noCA} {
			got := (&ClientAuth{Mode: mode, CAs: pool}).check(tc.certs, now)
			if got.Verify != w.verify || got.Refuse != w.refuse {
				t.Errorf("%s, mode %d: verify %q refuse %q, want %q %q", tc.name, mode, got.Verify, got.Refuse, w.verify, w.refuse)
			}
		}
	}
	cc := (&ClientAuth{Mode: VerifyOn, CAs: pool}).check([]*x509.Certificate{good}, now)
	if cc.SubjectDN != "CN=client,O=Example" || cc.IssuerDN != "CN=CA" || cc.Serial != "AB" || len(cc.Fingerprint) != 40 {
		t.Errorf("fields %+v", cc)
	}
	// OpenSSL (nginx) prints serials in whole bytes: 0x0abc is "0ABC", not "ABC".
	if cc := (&ClientAuth{Mode: VerifyOn, CAs: pool}).check([]*x509.Certificate{leaf(0xabc, "odd", now.Add(-time.Hour), now.Add(time.Hour), x509.ExtKeyUsageClientAuth)}, now); cc.Serial != "0ABC" {
		t.Errorf("serial 0xabc printed %q, want 0ABC", cc.Serial)
	}
	cc = (&ClientAuth{Mode: VerifyOptionalNoCA}).check([]*x509.Certificate{self}, now)
	if cc.SubjectDN != `CN=me\0D\0AX-Admin: 1` || cc.Refuse != "" {
		t.Errorf("self-signed under optional_no_ca without CAs: %+v", cc)
	}
}

// TestClientAuthOverResumption: with a ClientAuth, handlers see the result
// (Ctx.ClientCert) and the verified chains in the connection state, as with
// crypto/tls's own verification; a resumed session is checked again, so a
// reload that drops the CA (SetConfigAuth) refuses the next resumed
// connection's requests instead of trusting the ticket. TLS 1.2 and 1.3.
func TestClientAuthOverResumption(t *testing.T) {
	h := server.HandlerFunc(func(c *server.Ctx) {
		cc := c.ClientCert()
		st := c.Layer().(interface{ ConnectionState() tls.ConnectionState }).ConnectionState()
		c.Respond(200, "text/plain", []byte(fmt.Sprintf("%s %s chains=%d resumed=%v", cc.Verify, cc.Refuse, len(st.VerifiedChains), st.DidResume)))
	})
	clientCA, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	auth := &ClientAuth{Mode: VerifyOptional, CAs: clientCA.Pool()}
	e := startTLS(t, h, func(_ *server.Server, o *Options) { o.ClientAuth = auth })
	f, _ := clientCA.Issue("client", "client.test")
	kp, err := testcert.KeyPair(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		e.term.SetConfigAuth(e.certs.Config(), auth)
		cache := tls.NewLRUClientSessionCache(4)
		ask := func() string {
			t.Helper()
			conn, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{kp}, ClientSessionCache: cache, MinVersion: v, MaxVersion: v})
			if err != nil {
				t.Fatalf("%x: %v", v, err)
			}
			defer conn.Close()
			conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("%x: %v", v, err)
			}
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}
		if got := ask(); got != "SUCCESS  chains=1 resumed=false" {
			t.Fatalf("%x: first connection: %q", v, got)
		}
		if got := ask(); got != "SUCCESS  chains=1 resumed=true" {
			t.Fatalf("%x: resumed connection: %q", v, got)
		}
		other, _ := testcert.NewCA(t.TempDir())
		e.term.SetConfigAuth(e.certs.Config(), &ClientAuth{Mode: VerifyOptional, CAs: other.Pool()})
		if got := ask(); got != "FAILED:unable to get local issuer certificate "+RefuseCertError+" chains=0 resumed=true" {
			t.Fatalf("%x: resumed after the CA changed: %q", v, got)
		}
	}
}

// TestSessionResumesUnderItsClientAuth: a session resumes only under the
// client authentication it was established with (Mode and ID, as OpenSSL's
// session id context for nginx). A client whose session is from before
// client certificates were asked for, or asked for with other CAs, makes a
// full handshake and sends its certificate; it used to resume without one and
// be refused 400 "No required SSL certificate was sent" for as long as it kept
// the ticket. TLS 1.2 and 1.3.
func TestSessionResumesUnderItsClientAuth(t *testing.T) {
	h := server.HandlerFunc(func(c *server.Ctx) {
		verify := "off"
		if cc := c.ClientCert(); cc != nil {
			verify = cc.Verify
		}
		st := c.Layer().(interface{ ConnectionState() tls.ConnectionState }).ConnectionState()
		c.Respond(200, "text/plain", []byte(fmt.Sprintf("%s resumed=%v", verify, st.DidResume)))
	})
	clientCA, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := startTLS(t, h, nil)
	f, _ := clientCA.Issue("client", "client.test")
	kp, err := testcert.KeyPair(f)
	if err != nil {
		t.Fatal(err)
	}
	on := &ClientAuth{Mode: VerifyOn, CAs: clientCA.Pool(), ID: "one"}
	steps := []struct {
		auth *ClientAuth
		want string
	}{
		{nil, "off resumed=false"},
		{nil, "off resumed=true"},
		{on, "SUCCESS resumed=false"}, // verify_client turned on by a reload
		{on, "SUCCESS resumed=true"},
		{&ClientAuth{Mode: VerifyOn, CAs: clientCA.Pool(), ID: "two"}, "SUCCESS resumed=false"}, // another CA bundle
		{&ClientAuth{Mode: VerifyOptional, CAs: clientCA.Pool(), ID: "two"}, "SUCCESS resumed=false"},
		{&ClientAuth{Mode: VerifyOptional, CAs: clientCA.Pool(), ID: "two"}, "SUCCESS resumed=true"},
		{&ClientAuth{Mode: VerifyOff}, "off resumed=false"},
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cache := tls.NewLRUClientSessionCache(4)
		for i, s := range steps {
			e.term.SetConfigAuth(e.certs.Config(), s.auth)
			conn, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{kp}, ClientSessionCache: cache, MinVersion: v, MaxVersion: v})
			if err != nil {
				t.Fatalf("%x step %d: %v", v, i, err)
			}
			conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("%x step %d: %v", v, i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			conn.Close()
			if string(b) != s.want {
				t.Errorf("%x step %d: %q, want %q", v, i, b, s.want)
			}
		}
	}
}
