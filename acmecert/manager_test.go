package acmecert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// validators answer the CA's validations for managers with Go servers on
// 127.0.0.1: TLS-ALPN-01 on tlsPort and HTTP-01 on httpPort.
func validators(t *testing.T, httpPort, tlsPort int, ms ...*Manager) {
	t.Helper()
	tl, err := tls.Listen("tcp", "127.0.0.1:"+strconv.Itoa(tlsPort), &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			for _, m := range ms {
				if c := m.ChallengeConfig(h); c != nil {
					return c, nil
				}
			}
			return nil, io.EOF // refuses a handshake that is no validation
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	hl, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(httpPort))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.URL.Path, HTTPPathPrefix)
		for _, m := range ms {
			if b, ok := m.HTTPToken(tok); ok {
				w.Write(b)
				return
			}
		}
		http.NotFound(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(hl)
	t.Cleanup(func() { srv.Close() })
}

// newManager returns a manager of storage for domain against p.
func newManager(t *testing.T, p *testkit.Pebble, storage string, challenges []string, domains ...string) *Manager {
	t.Helper()
	m, err := New(Options{Directory: p.Directory, Email: "ops@gale.test", Domains: domains, Storage: storage,
		RootCAs: p.RootCAs, Challenges: challenges, Poll: 50 * time.Millisecond, RetryMin: 200 * time.Millisecond,
		Timeout: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// run runs m until the test ends.
func run(t *testing.T, m *Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitCert waits (a minute at most: a loaded machine) until m's certificate
// is issued by Pebble for every domain, and returns it.
func waitCert(t *testing.T, m *Manager, roots *x509.CertPool) *tls.Certificate {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c := m.Certificate()
		if c == nil || c.Leaf.Issuer.CommonName == "expiring" {
			continue
		}
		inter := x509.NewCertPool()
		for _, der := range c.Certificate[1:] {
			ic, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			inter.AddCert(ic)
		}
		for _, d := range m.Domains() {
			if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: d, Roots: roots, Intermediates: inter}); err != nil {
				t.Fatalf("issued certificate does not verify for %s: %v", d, err)
			}
		}
		return c
	}
	t.Fatalf("no certificate after a minute (stats %+v)", m.Stats())
	return nil
}

// TestOneOrderForManagersOfOneStorage: two managers on the same directory (as
// two worker processes are) get the same certificate, ordered once, answering
// TLS-ALPN-01 for each other (the challenge certificate is read from disk).
func TestOneOrderForManagersOfOneStorage(t *testing.T) {
	httpPort, tlsPort := testkit.FreePortNumber(t), testkit.FreePortNumber(t)
	p := testkit.StartPebble(t, httpPort, tlsPort)
	dir := t.TempDir()
	a := newManager(t, p, dir, []string{TLSALPN01}, "a.gale.test", "b.gale.test")
	b := newManager(t, p, dir, []string{TLSALPN01}, "a.gale.test", "b.gale.test")
	validators(t, httpPort, tlsPort, b) // only b answers: a's challenges come from the disk
	run(t, a)
	run(t, b)
	roots := p.Roots(t)
	ca, cb := waitCert(t, a, roots), waitCert(t, b, roots)
	if ca.Leaf.SerialNumber.Cmp(cb.Leaf.SerialNumber) != 0 {
		t.Fatalf("managers hold different certificates: %v and %v", ca.Leaf.SerialNumber, cb.Leaf.SerialNumber)
	}
	if n := a.Stats().Orders + b.Stats().Orders; n != 1 {
		t.Fatalf("%d orders, want 1 (a %+v, b %+v)", n, a.Stats(), b.Stats())
	}
	if _, err := os.Stat(filepath.Join(dir, "a.gale.test.pem")); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "challenges"))
	if len(left) != 0 {
		t.Fatalf("challenge answers left behind: %v", left)
	}
}

// TestHTTP01 obtains a certificate with HTTP-01 only.
func TestHTTP01(t *testing.T) {
	httpPort, tlsPort := testkit.FreePortNumber(t), testkit.FreePortNumber(t)
	p := testkit.StartPebble(t, httpPort, tlsPort)
	m := newManager(t, p, t.TempDir(), []string{HTTP01}, "h.gale.test")
	validators(t, httpPort, tlsPort, m)
	run(t, m)
	waitCert(t, m, p.Roots(t))
}

// expiring writes a self-signed certificate for domain that is due for renewal
// (3 hours long, 1 hour left) as the storage's certificate file.
func expiring(t *testing.T, dir, domain string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "expiring"},
		DNSNames: []string{domain}, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(dir, domain)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.saveCert(key, [][]byte{der}); err != nil {
		t.Fatal(err)
	}
}

// TestRenewsBeforeExpiry: a stored certificate inside its renewal window is
// served until the new one replaces it.
func TestRenewsBeforeExpiry(t *testing.T) {
	httpPort, tlsPort := testkit.FreePortNumber(t), testkit.FreePortNumber(t)
	p := testkit.StartPebble(t, httpPort, tlsPort)
	dir := t.TempDir()
	expiring(t, dir, "r.gale.test")
	m := newManager(t, p, dir, nil, "r.gale.test")
	if c := m.Certificate(); c == nil || c.Leaf.Subject.CommonName != "expiring" {
		t.Fatalf("the stored certificate is not loaded: %v", c)
	}
	validators(t, httpPort, tlsPort, m)
	run(t, m)
	waitCert(t, m, p.Roots(t))
	if m.Stats().Orders != 1 {
		t.Fatalf("stats %+v, want 1 order", m.Stats())
	}
}

// TestBackoff: failed orders are retried after RetryMin, doubling, and the wait
// is kept in the storage directory for every process.
func TestBackoff(t *testing.T) {
	dead := "https://127.0.0.1:" + strconv.Itoa(testkit.FreePortNumber(t)) + "/dir" // nothing listens
	dir := t.TempDir()
	mk := func() *Manager {
		m, err := New(Options{Directory: dead, Domains: []string{"x.gale.test"}, Storage: dir, RetryMin: time.Minute,
			RetryMax: 3 * time.Minute, Poll: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m, other := mk(), mk()
	ctx := context.Background()
	now := time.Now()
	m.step(ctx, now)
	r := m.store.loadRetry()
	if m.Stats().Failures != 1 || r.Failures != 1 || r.Err == "" {
		t.Fatalf("after a failed order: stats %+v, retry %+v", m.Stats(), r)
	}
	if d := r.Next.Sub(now); d < 59*time.Second || d > 2*time.Minute {
		t.Fatalf("first retry in %v, want about a minute", d)
	}
	other.step(ctx, now.Add(time.Second)) // another process honours the wait
	if other.Stats().Failures != 0 {
		t.Fatalf("another manager ordered during the wait: %+v", other.Stats())
	}
	m.step(ctx, r.Next.Add(time.Second))
	r2 := m.store.loadRetry()
	if r2.Failures != 2 || r2.Next.Sub(r.Next) < time.Minute {
		t.Fatalf("second failure: %+v (first %+v)", r2, r)
	}
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 3 * time.Minute, 10: 3 * time.Minute} {
		if got := backoff(time.Minute, 3*time.Minute, n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

// TestBackoffIsPerOrder: the wait recorded after failures holds back only an
// order with the same CA, domains and challenge types. A manager started on
// the directory with the settings fixed (a misspelled domain corrected,
// another CA, another challenge type) orders at once; it used to wait out the
// old failures' backoff, up to retry_max (6 h by default), after the restart.
// The same settings still wait, in any order and case of the domains.
func TestBackoffIsPerOrder(t *testing.T) {
	dead := "https://127.0.0.1:" + strconv.Itoa(testkit.FreePortNumber(t)) + "/dir" // nothing listens
	dir := t.TempDir()
	mk := func(ca string, challenges []string, domains ...string) *Manager {
		m, err := New(Options{Directory: ca, Domains: domains, Storage: dir, Challenges: challenges, RetryMin: time.Hour,
			RetryMax: 6 * time.Hour, Poll: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ctx, now := context.Background(), time.Now()
	first := mk(dead, nil, "a.gale.test", "b.gale.test")
	first.step(ctx, now)
	if first.Stats().Failures != 1 {
		t.Fatalf("the first order did not fail: %+v", first.Stats())
	}
	same := mk(dead, nil, "B.gale.test", "a.gale.test")
	same.step(ctx, now.Add(time.Second))
	if same.Stats().Failures != 0 {
		t.Fatal("a manager with the same settings ordered during the wait")
	}
	for name, m := range map[string]*Manager{
		"other domains":    mk(dead, nil, "a.gale.test", "c.gale.test"),
		"other CA":         mk(dead+"2", nil, "a.gale.test", "b.gale.test"),
		"other challenges": mk(dead, []string{HTTP01}, "a.gale.test", "b.gale.test"),
	} {
		before := m.store.loadRetry()
		m.step(ctx, now.Add(time.Second))
		if m.Stats().Failures != 1 {
			t.Errorf("%s: waited for the failures of other settings (%+v) instead of ordering", name, before)
		}
	}
}

// TestBadInputs: tokens that are not base64url are never looked up on disk,
// a ClientHello that offers more than acme-tls/1 is no validation, and invalid
// options are refused.
func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	m, err := New(Options{Domains: []string{"x.gale.test"}, Storage: dir})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "secret"), []byte("no"), 0o600)
	for _, tok := range []string{"", "../secret", "a/b", "a.b", strings.Repeat("a", 300)} {
		if _, ok := m.HTTPToken(tok); ok {
			t.Errorf("token %q answered", tok)
		}
	}
	if c := m.ChallengeConfig(&tls.ClientHelloInfo{ServerName: "x.gale.test", SupportedProtos: []string{"h2", ALPNProto}}); c != nil {
		t.Error("a ClientHello with h2 and acme-tls/1 was treated as a validation")
	}
	for _, o := range []Options{{Storage: dir}, {Domains: []string{"*.gale.test"}, Storage: dir}, {Domains: []string{"x"}},
		{Domains: []string{"x"}, Storage: dir, Challenges: []string{"dns-01"}}} {
		if _, err := New(o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}
