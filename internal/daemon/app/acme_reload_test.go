package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/crypto/acme"
)

// TestACMEReloadEmail: a reload that changes tls.acme.email updates the
// running account's contact at the CA (Pebble) without an order, and one that
// changes another setting of a storage directory in use (domains) names it in
// a warning. Before, both were dropped without a word: the account kept its
// first email until a restart (and, before that was fixed, for good).
func TestACMEReloadEmail(t *testing.T) {
	httpPort, tlsPort := testkit.FreePortNumber(t), testkit.FreePortNumber(t)
	p := testkit.StartPebble(t, httpPort, tlsPort)
	storage := t.TempDir()
	tlsAddr := "127.0.0.1:" + strconv.Itoa(tlsPort)
	conf := func(email, domains string) string {
		return fmt.Sprintf(`
workers: 1
servers:
  - listen: [%q]
    tls:
      acme: { email: %s, ca: %s, ca_root: %s, domains: [%s], storage: %s, challenges: [tls-alpn-01], poll: 50ms, retry_min: 200ms }
    routes:
      - respond: {body: "secure"}
`, tlsAddr, email, p.Directory, p.CAFile, domains, storage)
	}
	logs := &testkit.SyncBuffer{}
	a, _ := startAppLog(t, conf("ops@gale.test", "r.gale.test"), slog.New(slog.NewTextHandler(logs, nil)))
	if b := acmeGet(t, p, tlsAddr, "r.gale.test"); b != "secure" {
		t.Fatalf("body %q", b)
	}
	contact := func() []string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(storage, "account.key"))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		key, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		cl := &acme.Client{Key: key, DirectoryURL: p.Directory, HTTPClient: &http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.RootCAs}}}}
		acct, err := cl.GetReg(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		return acct.Contact
	}
	if got := contact(); !slices.Equal(got, []string{"mailto:ops@gale.test"}) {
		t.Fatalf("contact %v", got)
	}
	logs.Take()
	reload := func(yaml string) {
		t.Helper()
		cfg, err := config.Parse("test.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Reload(cfg); err != nil {
			t.Fatal(err)
		}
	}
	reload(conf("security@gale.test", "r.gale.test"))
	testkit.WaitFor(t, "the account's contact to change", func() bool {
		return strings.Contains(logs.String(), "acme: account contact updated")
	})
	if got := contact(); !slices.Equal(got, []string{"mailto:security@gale.test"}) {
		t.Fatalf("contact after the reload %v, want mailto:security@gale.test", got)
	}
	if got := logs.String(); strings.Contains(got, "certificate obtained") || strings.Contains(got, "take effect on restart") {
		t.Errorf("an email change ordered or warned:\n%s", got)
	}
	logs.Take()
	reload(conf("security@gale.test", "r.gale.test, s.gale.test"))
	if got := logs.Take(); !strings.Contains(got, "take effect on restart or upgrade") || !strings.Contains(got, "keys=tls.acme.domains") {
		t.Errorf("a change of domains was not named in a warning:\n%s", got)
	}
}
