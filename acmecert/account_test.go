package acmecert

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestAccountContactUpdated: a restart with another email updates the
// existing account's contact at the CA (RFC 8555 §7.3.2) at once, without
// waiting for the certificate's renewal and without ordering; an unchanged
// email sends the CA nothing more. Before, the account kept the first email
// for good: the registration of an existing account key is answered with the
// account as it is, and nothing else told the CA.
func TestAccountContactUpdated(t *testing.T) {
	httpPort, tlsPort := testkit.FreePortNumber(t), testkit.FreePortNumber(t)
	p := testkit.StartPebble(t, httpPort, tlsPort)
	dir := t.TempDir()
	withEmail := func(email string) *Manager {
		m, err := New(Options{Directory: p.Directory, Email: email, Domains: []string{"c.gale.test"}, Storage: dir,
			RootCAs: p.RootCAs, Poll: 50 * time.Millisecond, RetryMin: 200 * time.Millisecond,
			Timeout: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	contact := func(m *Manager) []string {
		t.Helper()
		key, err := m.store.accountKey()
		if err != nil {
			t.Fatal(err)
		}
		a, err := m.client(key).GetReg(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		return a.Contact
	}
	first := withEmail("ops@gale.test")
	validators(t, httpPort, tlsPort, first)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { first.Run(ctx); close(done) }()
	waitCert(t, first, p.Roots(t))
	cancel()
	<-done
	if got := contact(first); !slices.Equal(got, []string{"mailto:ops@gale.test"}) {
		t.Fatalf("contact after the first order %v", got)
	}

	second := withEmail("security@gale.test") // the restart with a new email
	if !second.accountDue() {
		t.Fatal("a changed email is not noticed")
	}
	run(t, second)
	testkit.WaitFor(t, "the account's contact to be updated", func() bool {
		return !second.accountDue()
	})
	if got := contact(second); !slices.Equal(got, []string{"mailto:security@gale.test"}) {
		t.Fatalf("contact at the CA %v, want mailto:security@gale.test", got)
	}
	if n := second.Stats().Orders; n != 0 {
		t.Fatalf("%d orders for a contact change, want none", n)
	}
	if same := withEmail("security@gale.test"); same.accountDue() {
		t.Fatal("an unchanged email would be sent to the CA again")
	}
}
