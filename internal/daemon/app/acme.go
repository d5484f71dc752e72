package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/gale-server/gale/acmecert"
	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/server"
)

// acmeSet is the App's ACME managers, one per storage directory, created by
// the configuration that first names it and kept (running) until shutdown.
type acmeSet struct {
	by      map[string]*acmecert.Manager // storage directory -> manager; guarded by App.mu
	started map[*acmecert.Manager]bool   // managers whose Run goroutine runs; guarded by App.mu
	conf    map[string]config.ACME       // storage directory -> the settings its manager runs with; guarded by App.mu
	// list is a copy-on-write snapshot of by's values, replaced under App.mu and
	// read without it by handshakes (TLS-ALPN-01) and plain listeners (HTTP-01).
	list atomic.Pointer[[]*acmecert.Manager]
}

// acmeManager returns the manager of a's storage directory, creating it on
// first use. A later configuration's changes to an existing directory's
// settings take effect on restart.
func (a *App) acmeManager(c *config.ACME) (*acmecert.Manager, error) {
	s := &a.acme
	if m, ok := s.by[c.Storage]; ok {
		return m, nil
	}
	var roots *x509.CertPool
	if c.CARoot != "" {
		var err error
		if roots, err = config.ClientCAPool(c.CARoot); err != nil {
			return nil, err
		}
	}
	m, err := acmecert.New(acmecert.Options{Directory: c.CA, Email: c.Email, Domains: c.Domains, Storage: c.Storage,
		RootCAs: roots, Challenges: c.Challenges, RenewBefore: c.RenewBefore, RetryMin: c.RetryMin, RetryMax: c.RetryMax,
		Poll: c.Poll, Logger: a.log})
	if err != nil {
		return nil, err
	}
	if s.by == nil {
		s.by, s.started, s.conf = map[string]*acmecert.Manager{}, map[*acmecert.Manager]bool{}, map[string]config.ACME{}
	}
	s.by[c.Storage], s.conf[c.Storage] = m, *c
	list := append(append([]*acmecert.Manager(nil), a.acmeList()...), m)
	s.list.Store(&list)
	return m, nil
}

// reloadACME applies what a reload may change of the acme sections whose
// storage directory is in use: a new email goes to the running manager, which
// updates the account's contact at the CA (RFC 8555 §7.3.2); changes to the
// other settings are logged as taking effect on restart or upgrade, instead
// of being dropped without a word. Call with App.mu held, once the reload is
// sure to be applied.
func (a *App) reloadACME(cfg *config.Config) {
	s := &a.acme
	for i := range cfg.Servers {
		t := cfg.Servers[i].TLS
		if t == nil || t.ACME == nil {
			continue
		}
		next := *t.ACME
		m, ok := s.by[next.Storage]
		if !ok {
			continue
		}
		cur := s.conf[next.Storage]
		if cur.Email != next.Email {
			m.SetEmail(next.Email)
			a.log.Info("acme: the account's contact will be updated", "storage", next.Storage, "email", next.Email)
			cur.Email = next.Email
			s.conf[next.Storage] = cur
		}
		if keys := acmeChanges(cur, next); len(keys) > 0 {
			a.log.Warn("reload: these changes of an acme section whose storage is in use take effect on restart or upgrade; the running values stay",
				"storage", next.Storage, "keys", strings.Join(keys, ","))
		}
	}
}

// acmeChanges lists the settings other than email that differ between a and b.
func acmeChanges(a, b config.ACME) []string {
	var keys []string
	for _, f := range []struct {
		key  string
		same bool
	}{
		{"tls.acme.ca", a.CA == b.CA},
		{"tls.acme.domains", slices.Equal(a.Domains, b.Domains)},
		{"tls.acme.ca_root", a.CARoot == b.CARoot},
		{"tls.acme.challenges", slices.Equal(a.Challenges, b.Challenges)},
		{"tls.acme.renew_before", a.RenewBefore == b.RenewBefore},
		{"tls.acme.retry_min", a.RetryMin == b.RetryMin},
		{"tls.acme.retry_max", a.RetryMax == b.RetryMax},
		{"tls.acme.poll", a.Poll == b.Poll},
	} {
		if !f.same {
			keys = append(keys, f.key)
		}
	}
	return keys
}

// acmeList returns the managers (a snapshot safe to read from any goroutine).
func (a *App) acmeList() []*acmecert.Manager {
	if p := a.acme.list.Load(); p != nil {
		return *p
	}
	return nil
}

// startACME starts the Run goroutine of every manager not yet running (once
// the listeners serve, so that the CA's validation finds them); they end at
// shutdown. Call with App.mu held.
func (a *App) startACME() {
	s := &a.acme
	for _, m := range a.acmeList() {
		if s.started[m] {
			continue
		}
		s.started[m] = true
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-a.stop
			cancel()
		}()
		go m.Run(ctx)
	}
}

// acmeChallenge answers TLS-ALPN-01 validations for every manager's domains
// (tlsterm.Options.Challenge).
func (a *App) acmeChallenge(h *tls.ClientHelloInfo) *tls.Config {
	if !acmecert.IsChallengeHello(h) {
		return nil
	}
	for _, m := range a.acmeList() {
		if c := m.ChallengeConfig(h); c != nil {
			return c
		}
	}
	return nil
}

// acmeHTTPToken returns the answer to an HTTP-01 validation of token.
func (a *App) acmeHTTPToken(token string) ([]byte, bool) {
	for _, m := range a.acmeList() {
		if b, ok := m.HTTPToken(token); ok {
			return b, true
		}
	}
	return nil, false
}

// httpToken answers the HTTP-01 validations on plain listeners: tokens looks
// one up (App.acmeHTTPToken); nil when no server uses ACME.
type httpToken func(token string) ([]byte, bool)

// serve answers c when it asks for an ACME HTTP-01 token, and reports whether
// it did; an unknown token is a 404.
func (t httpToken) serve(c *server.Ctx) bool {
	if t == nil {
		return false
	}
	tok, ok := strings.CutPrefix(string(c.Path()), acmecert.HTTPPathPrefix)
	if !ok {
		return false
	}
	if b, ok := t(tok); ok {
		c.Respond(200, "application/octet-stream", b)
	} else {
		c.Error(404, "unknown ACME challenge token")
	}
	return true
}

// answerACME makes the plain (non-TLS) routers answer HTTP-01 validations
// when any server uses ACME.
func (a *App) answerACME(cfg *config.Config, routers map[string]*Router, tlsAt map[string]*config.TLS) {
	tok := acmeToken(cfg, a)
	for addr, r := range routers {
		if tlsAt[addr] == nil {
			r.acme = tok
		}
	}
}

// usesACME reports whether a server of cfg has an acme section.
func usesACME(cfg *config.Config) bool {
	for i := range cfg.Servers {
		if t := cfg.Servers[i].TLS; t != nil && t.ACME != nil {
			return true
		}
	}
	return false
}

// acmeToken returns a's HTTP-01 lookup when a server of cfg uses ACME, else nil.
func acmeToken(cfg *config.Config, a *App) httpToken {
	if !usesACME(cfg) {
		return nil
	}
	return a.acmeHTTPToken
}
