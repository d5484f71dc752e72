package tlsterm

import (
	"bytes"
	"crypto/tls"
	"testing"
	"time"
)

// resumes dials addr with cache and reports whether the session was resumed.
func resumes(t *testing.T, e *env, addr string, cache tls.ClientSessionCache) bool {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", ClientSessionCache: cache, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().DidResume
}

// TestTicketKeysShared: a session issued by one terminator resumes on another
// with keys from the same secret, also after one rotation (the previous key is
// accepted), and not on one with another secret.
func TestTicketKeysShared(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	now := time.Now()
	const period = time.Hour
	a, b, other := startTLS(t, hello, nil), startTLS(t, hello, nil), startTLS(t, hello, nil)
	b.ca, other.ca = a.ca, a.ca // one CA for the three, so the client trusts each
	b.term.SetConfig(a.certs.Config())
	other.term.SetConfig(a.certs.Config())
	set := func(e *env, s []byte, at time.Time) {
		keys, err := TicketKeys(s, "addr", period, at)
		if err != nil {
			t.Fatal(err)
		}
		e.term.SetTicketKeys(keys)
	}
	set(a, secret, now)
	set(b, secret, now.Add(period)) // b has rotated once since
	set(other, bytes.Repeat([]byte{8}, 32), now)
	cache := tls.NewLRUClientSessionCache(4)
	if resumes(t, a, a.addr, cache) {
		t.Fatal("the first connection resumed")
	}
	if !resumes(t, a, b.addr, cache) {
		t.Fatal("a session from a did not resume on b (same secret, one rotation later)")
	}
	cache = tls.NewLRUClientSessionCache(4)
	resumes(t, a, a.addr, cache)
	if resumes(t, a, other.addr, cache) {
		t.Fatal("a session resumed on a terminator with another secret")
	}
	if _, err := TicketKeys(secret[:31], "addr", period, now); err != ErrTicketSecret {
		t.Fatalf("short secret: %v", err)
	}
}
