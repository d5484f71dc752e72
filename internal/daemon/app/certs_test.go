package app

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gale-server/gale/internal/testcert"
)

// serverCert makes a test CA in a temporary directory and a certificate for
// localhost and 127.0.0.1 signed by it, for the tests of TLS listeners.
func serverCert(t *testing.T) (*testcert.CA, testcert.Files) {
	t.Helper()
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("srv", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return ca, cert
}

// tlsOrigin starts a net/http origin serving h over TLS with a certificate of
// ca for name, offering protos with ALPN (nil: httptest's http/1.1), and
// returns its ip:port.
func tlsOrigin(t *testing.T, ca *testcert.CA, name string, protos []string, h http.Handler) string {
	t.Helper()
	f, err := ca.Issue("origin", name)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	o := httptest.NewUnstartedServer(h)
	o.TLS = &tls.Config{Certificates: []tls.Certificate{kp}, NextProtos: protos}
	o.StartTLS()
	t.Cleanup(o.Close)
	return strings.TrimPrefix(o.URL, "https://")
}
