// Package acmecert obtains and renews TLS certificates from an ACME certificate
// authority (RFC 8555) with golang.org/x/crypto/acme, and answers the CA's
// HTTP-01 and TLS-ALPN-01 (RFC 8737) challenges from gale's own listeners.
//
// A Manager keeps one certificate for a list of domains in a storage directory.
// Every worker process of a server runs a Manager on the same directory: the one
// that takes the directory's file lock orders (and renews), writes the
// certificate atomically and releases the lock; the others load what it wrote.
// The challenge answers are files in the directory too, so that the CA's
// validation request is answered by whichever process accepts its connection.
package acmecert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Challenge types a Manager can answer.
const (
	HTTP01    = "http-01"     // a plain HTTP listener on port 80 answers /.well-known/acme-challenge/TOKEN
	TLSALPN01 = "tls-alpn-01" // the TLS listener on port 443 answers ALPN acme-tls/1
)

// ALPNProto is the ALPN protocol of TLS-ALPN-01 validation (RFC 8737 §6.2).
const ALPNProto = "acme-tls/1"

// HTTPPathPrefix is the path under which HTTP-01 tokens are requested.
const HTTPPathPrefix = "/.well-known/acme-challenge/"

// LetsEncrypt is the default directory URL (Let's Encrypt's production CA).
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// Options configure a Manager.
type Options struct {
	// Directory is the CA's ACME directory URL (default LetsEncrypt).
	Directory string
	// Email is the account's contact address; may be empty.
	Email string
	// Domains are the certificate's DNS names (at least one); the first names
	// the certificate's file.
	Domains []string
	// Storage is the directory that holds the account key, the certificate, the
	// lock and the pending challenge answers; created (0700) when missing.
	Storage string
	// RootCAs verify the CA's HTTPS certificate (nil: the system's roots).
	RootCAs *x509.CertPool
	// Challenges are the challenge types to use, in order of preference
	// (default TLSALPN01 then HTTP01).
	Challenges []string
	// RenewBefore is how long before expiry the certificate is renewed (default
	// 30 days; at most a third of the certificate's lifetime is used for short ones).
	RenewBefore time.Duration
	// RetryMin and RetryMax bound the wait after a failed order: it starts at
	// RetryMin and doubles up to RetryMax (defaults 1 minute and 6 hours).
	RetryMin, RetryMax time.Duration
	// Poll is how often a process that does not order looks for a certificate
	// another process wrote (default 10 seconds).
	Poll time.Duration
	// Timeout bounds one order, from account to certificate (default 5 minutes).
	Timeout time.Duration
	// Logger receives orders, renewals and failures (default slog.Default()).
	Logger *slog.Logger
}

// Manager obtains and renews one certificate; see the package comment. Its
// methods are safe for concurrent use: the certificate is an atomic pointer that
// handshakes read and Run replaces.
type Manager struct {
	o     Options
	store *store
	cert  atomic.Pointer[tls.Certificate] // the current certificate; nil before the first
	mtime atomic.Int64                    // modification time (ns) of the loaded file; owned by Run

	mu      sync.Mutex                  // guards pending
	pending map[string]*tls.Certificate // TLS-ALPN-01 certificates of this process's orders, by domain

	orders   atomic.Uint64 // certificates this process ordered
	failures atomic.Uint64 // failed orders of this process

	// email is the account's contact address: Options.Email, then SetEmail's.
	email atomic.Pointer[string]

	// accountNext is when a failed update of the account's contact may be tried
	// again, after accountFailures consecutive failures. Owned by Run.
	accountNext     time.Time
	accountFailures int
}

// ErrNoCertificate is returned by GetCertificate before a certificate exists.
var ErrNoCertificate = errors.New("acmecert: no certificate obtained yet")

// New checks opts, creates the storage directory and loads the certificate
// already stored there, if any. Call Run to obtain and renew it.
func New(opts Options) (*Manager, error) {
	if len(opts.Domains) == 0 {
		return nil, errors.New("acmecert: no domain")
	}
	for _, d := range opts.Domains {
		if d == "" || strings.ContainsAny(d, "/\\ *") {
			return nil, fmt.Errorf("acmecert: invalid domain %q", d)
		}
	}
	if opts.Storage == "" {
		return nil, errors.New("acmecert: no storage directory")
	}
	if opts.Directory == "" {
		opts.Directory = LetsEncrypt
	}
	if len(opts.Challenges) == 0 {
		opts.Challenges = []string{TLSALPN01, HTTP01}
	}
	for _, c := range opts.Challenges {
		if c != HTTP01 && c != TLSALPN01 {
			return nil, fmt.Errorf("acmecert: unknown challenge type %q", c)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.RenewBefore, 30*24*time.Hour)
	def(&opts.RetryMin, time.Minute)
	def(&opts.RetryMax, 6*time.Hour)
	def(&opts.Poll, 10*time.Second)
	def(&opts.Timeout, 5*time.Minute)
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = opts.RetryMin
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	st, err := openStore(opts.Storage, opts.Domains[0])
	if err != nil {
		return nil, err
	}
	m := &Manager{o: opts, store: st, pending: map[string]*tls.Certificate{}}
	m.email.Store(&opts.Email)
	m.reload()
	return m, nil
}

// SetEmail changes the account's contact address (a reload): Run updates the
// account at the CA at its next poll (RFC 8555 §7.3.2), without an order.
func (m *Manager) SetEmail(email string) { m.email.Store(&email) }

// Domains returns the certificate's names.
func (m *Manager) Domains() []string { return slices.Clone(m.o.Domains) }

// Certificate returns the current certificate, or nil before one exists.
func (m *Manager) Certificate() *tls.Certificate { return m.cert.Load() }

// Covers reports whether name (an SNI name) is one of the manager's domains.
func (m *Manager) Covers(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, d := range m.o.Domains {
		if strings.EqualFold(d, name) {
			return true
		}
	}
	return false
}

// GetCertificate returns the current certificate (a tls.Config.GetCertificate).
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := m.cert.Load(); c != nil {
		return c, nil
	}
	return nil, ErrNoCertificate
}

// ChallengeConfig returns the TLS configuration that answers a TLS-ALPN-01
// validation for hello (one that offers only ALPN acme-tls/1), or nil when no
// challenge of hello's server name is pending in any process. The handshake
// it allows must be closed once complete (RFC 8737 §3).
func (m *Manager) ChallengeConfig(hello *tls.ClientHelloInfo) *tls.Config {
	if !IsChallengeHello(hello) || !m.Covers(hello.ServerName) {
		return nil
	}
	name := strings.ToLower(hello.ServerName)
	m.mu.Lock()
	c := m.pending[name]
	m.mu.Unlock()
	if c == nil {
		c = m.store.loadALPNChallenge(name)
	}
	if c == nil {
		return nil
	}
	return &tls.Config{Certificates: []tls.Certificate{*c}, NextProtos: []string{ALPNProto}, MinVersion: tls.VersionTLS12}
}

// IsChallengeHello reports whether hello is a TLS-ALPN-01 validation: its only
// ALPN protocol is acme-tls/1.
func IsChallengeHello(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ALPNProto
}

// HTTPToken returns the answer to an HTTP-01 request for token (the last path
// segment under HTTPPathPrefix), written by whichever process is ordering.
func (m *Manager) HTTPToken(token string) ([]byte, bool) {
	return m.store.loadHTTPToken(token)
}

// Stats are a Manager's counters.
type Stats struct {
	Orders   uint64 // certificates this process obtained
	Failures uint64 // orders of this process that failed
}

// Stats returns the counters.
func (m *Manager) Stats() Stats { return Stats{Orders: m.orders.Load(), Failures: m.failures.Load()} }

// renewAt returns when c should be renewed: RenewBefore before expiry, or a
// third of its lifetime before when that is shorter.
func (m *Manager) renewAt(c *tls.Certificate) time.Time {
	life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
	before := min(m.o.RenewBefore, life/3)
	return c.Leaf.NotAfter.Add(-before)
}

// due reports whether the current certificate is missing, does not cover the
// configured domains, or should be renewed at now.
func (m *Manager) due(now time.Time) bool {
	c := m.cert.Load()
	if c == nil {
		return true
	}
	for _, d := range m.o.Domains {
		if c.Leaf.VerifyHostname(d) != nil {
			return true
		}
	}
	return !now.Before(m.renewAt(c))
}

// reload loads the stored certificate when the file changed since the last load.
// A file that does not parse is logged and the current certificate kept.
func (m *Manager) reload() {
	c, mtime, err := m.store.loadCert(m.mtime.Load())
	switch {
	case err != nil:
		m.o.Logger.Error("acme: stored certificate unusable", "file", m.store.certFile(), "err", err)
	case c != nil:
		m.cert.Store(c)
		m.mtime.Store(mtime)
		m.o.Logger.Info("acme: certificate loaded", "file", m.store.certFile(), "not_after", c.Leaf.NotAfter)
	}
}

// Run obtains the certificate when it is missing and renews it before expiry
// until ctx ends. A failed order is retried after RetryMin, doubling up to
// RetryMax; the wait is recorded in the storage directory so that every process
// honours it. While another process holds the lock, Run polls the directory
// for the certificate it writes.
func (m *Manager) Run(ctx context.Context) {
	for {
		wait := m.step(ctx, time.Now())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// step does one round of Run at now and returns how long to wait before the next.
func (m *Manager) step(ctx context.Context, now time.Time) time.Duration {
	m.reload()
	if !m.due(now) {
		m.syncAccount(ctx, now)
		return min(m.o.Poll, time.Until(m.renewAt(m.cert.Load())))
	}
	unlock, ok, err := m.store.tryLock()
	if err != nil {
		m.o.Logger.Error("acme: locking the storage directory", "err", err)
		return m.o.Poll
	}
	if !ok {
		return m.o.Poll // another process orders; its certificate shows up on disk
	}
	defer unlock()
	m.reload() // it may have finished just before we took the lock
	if !m.due(now) {
		return m.o.Poll
	}
	r := m.store.loadRetry()
	if key := m.orderKey(); r.Order != key {
		r = retry{Order: key} // the failures were of other settings, since fixed
	}
	if now.Before(r.Next) {
		return min(m.o.Poll, r.Next.Sub(now))
	}
	octx, cancel := context.WithTimeout(ctx, m.o.Timeout)
	err = m.order(octx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return m.o.Poll
		}
		m.failures.Add(1)
		r.Failures++
		r.Next = time.Now().Add(backoff(m.o.RetryMin, m.o.RetryMax, r.Failures))
		r.Err = err.Error()
		if werr := m.store.saveRetry(r); werr != nil {
			m.o.Logger.Error("acme: recording the retry", "err", werr)
		}
		m.o.Logger.Error("acme: order failed", "domains", m.o.Domains, "failures", r.Failures, "retry_at", r.Next, "err", err)
		return min(m.o.Poll, time.Until(r.Next))
	}
	m.orders.Add(1)
	m.store.clearRetry()
	m.reload()
	return m.o.Poll
}

// orderKey identifies what an order asks for and how: the CA, the domains (in
// lower case and sorted) and the challenge types. A failure recorded under
// another key (the operator changed a misspelled domain, moved from a staging
// CA, or turned to another challenge type, then restarted) is not waited for.
func (m *Manager) orderKey() string {
	ds := make([]string, len(m.o.Domains))
	for i, d := range m.o.Domains {
		ds[i] = strings.ToLower(d)
	}
	slices.Sort(ds)
	return m.o.Directory + " " + strings.Join(ds, ",") + " " + strings.Join(m.o.Challenges, ",")
}

// backoff is the wait after the n-th consecutive failure (n ≥ 1): lo doubled
// n-1 times, at most hi.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// httpClient returns the client that talks to the CA.
func (m *Manager) httpClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: m.o.RootCAs, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}
