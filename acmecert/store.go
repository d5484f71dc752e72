package acmecert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// store is the storage directory:
//
//	account.key            the ACME account's key (PEM, EC P-256)
//	account.json           the contact the CA was last given for that account, and the CA
//	NAME.pem               the certificate: its private key, then the chain (one
//	                       file, so that a reader never pairs a new chain with an old key)
//	lock                   flock(2)ed by the process that orders
//	retry.json             failures since the last success and when to try again
//	challenges/http-TOKEN  an HTTP-01 answer in progress
//	challenges/alpn-NAME.pem  a TLS-ALPN-01 certificate in progress
//
// Files are written to a temporary name and renamed, so readers see whole files.
// It is immutable after openStore.
type store struct {
	dir, name string
}

// openStore creates dir (and its challenges directory) when missing.
func openStore(dir, name string) (*store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "challenges"), 0o700); err != nil {
		return nil, fmt.Errorf("acmecert: storage: %w", err)
	}
	return &store{dir: dir, name: name}, nil
}

func (s *store) certFile() string { return filepath.Join(s.dir, s.name+".pem") }

// writeFile writes b to name in the directory atomically (0600).
func (s *store) writeFile(name string, b []byte) error {
	path := filepath.Join(s.dir, name)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// loadCert parses the certificate file when its modification time differs from
// since; it returns nil and no error when the file is absent or unchanged.
func (s *store) loadCert(since int64) (*tls.Certificate, int64, error) {
	fi, err := os.Stat(s.certFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	mtime := fi.ModTime().UnixNano()
	if mtime == since {
		return nil, 0, nil
	}
	b, err := os.ReadFile(s.certFile())
	if err != nil {
		return nil, 0, err
	}
	c, err := parseKeyPair(b)
	if err != nil {
		return nil, 0, err
	}
	return c, mtime, nil
}

// parseKeyPair parses a PEM file holding a private key and a certificate chain.
func parseKeyPair(b []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(b, b)
	if err != nil {
		return nil, err
	}
	return &c, nil // Leaf is set by X509KeyPair
}

// saveCert writes key and the DER chain as the certificate file.
func (s *store) saveCert(key *ecdsa.PrivateKey, chain [][]byte) error {
	b, err := encodeKeyPair(key, chain)
	if err != nil {
		return err
	}
	return s.writeFile(s.name+".pem", b)
}

// encodeKeyPair is the PEM form of a key and its DER certificate chain.
func encodeKeyPair(key *ecdsa.PrivateKey, chain [][]byte) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	for _, c := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	return out, nil
}

// accountKey loads the account key, creating it on first use (under the lock).
func (s *store) accountKey() (*ecdsa.PrivateKey, error) {
	path := filepath.Join(s.dir, "account.key")
	b, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM block", path)
		}
		k, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return k, s.writeFile("account.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

// retry is the content of retry.json.
type retry struct {
	Failures int       `json:"failures"`
	Next     time.Time `json:"next"`
	Err      string    `json:"error"`
	// Order is the orderKey of the settings that failed: a wait recorded for
	// other domains, another CA or other challenges does not hold back an order
	// with these.
	Order string `json:"order"`
}

func (s *store) loadRetry() retry {
	var r retry
	if b, err := os.ReadFile(filepath.Join(s.dir, "retry.json")); err == nil {
		_ = json.Unmarshal(b, &r) // a damaged file counts as no failure
	}
	return r
}

func (s *store) saveRetry(r retry) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.writeFile("retry.json", b)
}

func (s *store) clearRetry() { os.Remove(filepath.Join(s.dir, "retry.json")) }

// validToken reports whether token is base64url (RFC 8555 §8.1), so that it is
// safe as a file name.
func validToken(token string) bool {
	if token == "" || len(token) > 256 {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *store) httpTokenFile(token string) string { return filepath.Join("challenges", "http-"+token) }

func (s *store) loadHTTPToken(token string) ([]byte, bool) {
	if !validToken(token) {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(s.dir, s.httpTokenFile(token)))
	return b, err == nil
}

func (s *store) alpnFile(name string) string { return filepath.Join("challenges", "alpn-"+name+".pem") }

// loadALPNChallenge reads the TLS-ALPN-01 certificate of name another process
// wrote; nil when there is none.
func (s *store) loadALPNChallenge(name string) *tls.Certificate {
	b, err := os.ReadFile(filepath.Join(s.dir, s.alpnFile(name)))
	if err != nil {
		return nil
	}
	c, err := parseKeyPair(b)
	if err != nil {
		return nil
	}
	return c
}

func (s *store) remove(name string) { os.Remove(filepath.Join(s.dir, name)) }
