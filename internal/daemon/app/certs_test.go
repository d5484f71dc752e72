package app

import (
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
