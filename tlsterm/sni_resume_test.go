package tlsterm

import (
	"crypto/tls"
	"strings"
	"sync"
	"testing"
)

// anyNameCache is a tls.ClientSessionCache that offers its last session for
// every server name, as a client that ignores RFC 6066's advice may.
type anyNameCache struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (c *anyNameCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs, c.cs != nil
}

func (c *anyNameCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs != nil {
		c.cs = cs
	}
}

// TestResumptionKeepsSNI: a session resumes under the SNI name it was
// established for (compared without case) and not under another one, which
// gets a full handshake with its own certificate (RFC 6066 §3). TLS 1.2 and 1.3.
func TestResumptionKeepsSNI(t *testing.T) {
	e := startTLS(t, hello, nil)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cache := &anyNameCache{}
		dial := func(name string) tls.ConnectionState {
			t.Helper()
			// InsecureSkipVerify: else the client itself would not offer a
			// session whose certificate does not cover name.
			conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: name, InsecureSkipVerify: true, ClientSessionCache: cache, MinVersion: v, MaxVersion: v})
			if err != nil {
				t.Fatalf("%x %s: %v", v, name, err)
			}
			defer conn.Close()
			// TLS 1.3 tickets come after the handshake: read until the
			// server's first record is processed (the client sends nothing, so
			// a short deadline read returns once the ticket is in).
			if v == tls.VersionTLS13 {
				conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
				buf := make([]byte, 1)
				if _, err := conn.Read(buf); err != nil {
					t.Fatalf("%x %s: reading the response: %v", v, name, err)
				}
			}
			return conn.ConnectionState()
		}
		if cs := dial("localhost"); cs.DidResume {
			t.Fatalf("%x: the first connection resumed", v)
		}
		if cs := dial("LocalHost"); !cs.DidResume {
			t.Fatalf("%x: the session did not resume under its own name in other case", v)
		}
		cs := dial("a.example.test")
		if cs.DidResume {
			t.Fatalf("%x: a session established for localhost resumed under a.example.test", v)
		}
		if got := cs.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != "*.example.test" {
			t.Fatalf("%x: a.example.test got the certificate for %v", v, got)
		}
		if cs := dial("a.example.test"); !cs.DidResume {
			t.Fatalf("%x: the session for a.example.test did not resume", v)
		}
	}
}

// TestResumptionNeedsAServedName: after a reload (SetConfig) that removes the
// certificate of a name under unknown_sni: reject, a ticket issued for that
// name does not resume: the full handshake refuses the name with
// unrecognized_name, as it does for a new client. A resumed TLS 1.3
// handshake chooses no certificate, so the ticket used to get the removed name
// served (crypto/tls's TLS 1.2 chooses one first and refused it already).
func TestResumptionNeedsAServedName(t *testing.T) {
	e := startTLS(t, hello, nil)
	def, _ := e.ca.Issue("def2", "localhost")
	only, err := LoadCerts([]CertFiles{{Cert: def.Cert, Key: def.Key}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		e.term.SetConfig((&Selector{Static: e.certs, RejectUnknown: true}).Config())
		cache := tls.NewLRUClientSessionCache(2)
		dial := func() (tls.ConnectionState, error) {
			conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "a.example.test", RootCAs: e.ca.Pool(), ClientSessionCache: cache, MinVersion: v, MaxVersion: v})
			if err != nil {
				return tls.ConnectionState{}, err
			}
			defer conn.Close()
			conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			if _, err := conn.Read(make([]byte, 1)); err != nil {
				return tls.ConnectionState{}, err
			}
			return conn.ConnectionState(), nil
		}
		if _, err := dial(); err != nil {
			t.Fatalf("%x: %v", v, err)
		}
		if cs, err := dial(); err != nil || !cs.DidResume {
			t.Fatalf("%x: the session did not resume (%v)", v, err)
		}
		e.term.SetConfig((&Selector{Static: only, RejectUnknown: true}).Config()) // the reload
		if cs, err := dial(); err == nil {
			t.Fatalf("%x: a.example.test served after its certificate was removed (resumed %v)", v, cs.DidResume)
		} else if !strings.Contains(err.Error(), "unrecognized name") {
			t.Fatalf("%x: %v, want unrecognized_name", v, err)
		}
	}
}
