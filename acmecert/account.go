package acmecert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/crypto/acme"
)

// accountRecord is account.json: the contact the CA was last told for the
// account of account.key, and which CA, so that a changed email (or CA) is
// noticed without asking the CA at every poll.
type accountRecord struct {
	Directory string   `json:"directory"`
	Contact   []string `json:"contact"`
}

// contact is the account contact the options ask for (RFC 8555 §7.3).
func (m *Manager) contact() []string {
	e := *m.email.Load()
	if e == "" {
		return nil
	}
	return []string{"mailto:" + e}
}

func (s *store) loadAccount() (accountRecord, bool) {
	var r accountRecord
	b, err := os.ReadFile(filepath.Join(s.dir, "account.json"))
	if err != nil || json.Unmarshal(b, &r) != nil {
		return r, false
	}
	return r, true
}

func (s *store) saveAccount(r accountRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.writeFile("account.json", b)
}

// hasAccountKey reports whether account.key exists: an account may exist at
// the CA.
func (s *store) hasAccountKey() bool {
	_, err := os.Stat(filepath.Join(s.dir, "account.key"))
	return err == nil
}

// accountDue reports whether the account's contact at the CA may differ from
// the configured one: an account key exists, and account.json is missing (an
// older gale registered it) or records another contact or CA.
func (m *Manager) accountDue() bool {
	if !m.store.hasAccountKey() {
		return false // the first order registers the account
	}
	r, ok := m.store.loadAccount()
	return !ok || r.Directory != m.o.Directory || !slices.Equal(r.Contact, m.contact())
}

// account registers the account of cl's key with the configured contact, or,
// when it exists already, updates its contact if it differs (RFC 8555
// §7.3.2), and records the result in account.json. The caller holds the
// storage lock.
func (m *Manager) account(ctx context.Context, cl *acme.Client) error {
	want := m.contact()
	_, err := cl.Register(ctx, &acme.Account{Contact: want}, acme.AcceptTOS)
	if errors.Is(err, acme.ErrAccountAlreadyExists) {
		var a *acme.Account
		if a, err = cl.GetReg(ctx, ""); err != nil {
			return fmt.Errorf("looking up the account: %w", err)
		}
		switch {
		case slices.Equal(a.Contact, want):
		case len(want) == 0:
			// golang.org/x/crypto/acme omits an empty contact list from the
			// update, so the CA would keep the old one: say so instead.
			m.o.Logger.Warn("acme: email was removed, but the account keeps its contact at the CA", "contact", a.Contact)
		default:
			if _, err = cl.UpdateReg(ctx, &acme.Account{Contact: want}); err != nil {
				return fmt.Errorf("updating the account contact from %v to %v: %w", a.Contact, want, err)
			}
			m.o.Logger.Info("acme: account contact updated", "from", a.Contact, "to", want, "uri", a.URI)
		}
	} else if err != nil {
		return fmt.Errorf("registering the account: %w", err)
	}
	return m.store.saveAccount(accountRecord{Directory: m.o.Directory, Contact: want})
}

// syncAccount brings the account's contact up to date when accountDue,
// between orders (a changed email with a certificate months from renewal).
// It takes the storage lock; a failure is logged and tried again after
// RetryMin, doubling up to RetryMax, in this process.
func (m *Manager) syncAccount(ctx context.Context, now time.Time) {
	if !m.accountDue() || now.Before(m.accountNext) {
		return
	}
	unlock, ok, err := m.store.tryLock()
	if err != nil || !ok {
		return // another process holds it: it may be doing this very update
	}
	defer unlock()
	if !m.accountDue() {
		return
	}
	akey, err := m.store.accountKey()
	if err == nil {
		actx, cancel := context.WithTimeout(ctx, m.o.Timeout)
		err = m.account(actx, m.client(akey))
		cancel()
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		m.accountFailures++
		m.accountNext = time.Now().Add(backoff(m.o.RetryMin, m.o.RetryMax, m.accountFailures))
		m.o.Logger.Error("acme: account update failed", "failures", m.accountFailures, "retry_at", m.accountNext, "err", err)
		return
	}
	m.accountFailures, m.accountNext = 0, time.Time{}
}
