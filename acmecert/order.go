package acmecert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"strings"

	"golang.org/x/crypto/acme"
)

// order obtains a new certificate for the domains and stores it; the caller
// holds the storage lock.
func (m *Manager) order(ctx context.Context) error {
	akey, err := m.store.accountKey()
	if err != nil {
		return fmt.Errorf("account key: %w", err)
	}
	cl := m.client(akey)
	if err := m.account(ctx, cl); err != nil {
		return err
	}
	o, err := cl.AuthorizeOrder(ctx, acme.DomainIDs(m.o.Domains...))
	if err != nil {
		return fmt.Errorf("new order: %w", err)
	}
	for _, u := range o.AuthzURLs {
		if err := m.authorize(ctx, cl, u); err != nil {
			return err
		}
	}
	if o, err = cl.WaitOrder(ctx, o.URI); err != nil {
		return fmt.Errorf("waiting for the order: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: m.o.Domains}, key)
	if err != nil {
		return err
	}
	chain, _, err := cl.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil {
		return fmt.Errorf("finalizing the order: %w", err)
	}
	if err := m.store.saveCert(key, chain); err != nil {
		return fmt.Errorf("storing the certificate: %w", err)
	}
	m.o.Logger.Info("acme: certificate obtained", "domains", m.o.Domains, "file", m.store.certFile())
	return nil
}

// client returns an ACME client of the CA with the account key akey.
func (m *Manager) client(akey *ecdsa.PrivateKey) *acme.Client {
	return &acme.Client{Key: akey, DirectoryURL: m.o.Directory, HTTPClient: m.httpClient(), UserAgent: "gale"}
}

// authorize answers the authorization at url with the first challenge type of
// Options.Challenges the CA offers, and waits until the CA has validated it.
func (m *Manager) authorize(ctx context.Context, cl *acme.Client, url string) error {
	z, err := cl.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	if z.Status == acme.StatusValid {
		return nil
	}
	domain := strings.ToLower(z.Identifier.Value)
	var chal *acme.Challenge
	for _, typ := range m.o.Challenges {
		for _, c := range z.Challenges {
			if c.Type == typ && chal == nil {
				chal = c
			}
		}
	}
	if chal == nil {
		return fmt.Errorf("%s: the CA offers none of the challenge types %v", domain, m.o.Challenges)
	}
	if !validToken(chal.Token) {
		return fmt.Errorf("%s: the CA sent an invalid challenge token", domain)
	}
	cleanup, err := m.prepare(cl, chal, domain)
	if err != nil {
		return fmt.Errorf("%s: preparing %s: %w", domain, chal.Type, err)
	}
	defer cleanup()
	if _, err := cl.Accept(ctx, chal); err != nil {
		return fmt.Errorf("%s: accepting %s: %w", domain, chal.Type, err)
	}
	if _, err := cl.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("%s: %s validation: %w", domain, chal.Type, err)
	}
	return nil
}

// prepare makes the answer to chal available to every process: an HTTP-01 key
// authorization file, or a TLS-ALPN-01 certificate (kept in memory too). The
// returned function removes it.
func (m *Manager) prepare(cl *acme.Client, chal *acme.Challenge, domain string) (func(), error) {
	switch chal.Type {
	case HTTP01:
		body, err := cl.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return nil, err
		}
		f := m.store.httpTokenFile(chal.Token)
		if err := m.store.writeFile(f, []byte(body)); err != nil {
			return nil, err
		}
		return func() { m.store.remove(f) }, nil
	case TLSALPN01:
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		c, err := cl.TLSALPN01ChallengeCert(chal.Token, domain, acme.WithKey(key))
		if err != nil {
			return nil, err
		}
		b, err := encodeKeyPair(key, c.Certificate)
		if err != nil {
			return nil, err
		}
		f := m.store.alpnFile(domain)
		if err := m.store.writeFile(f, b); err != nil {
			return nil, err
		}
		m.mu.Lock()
		m.pending[domain] = &c
		m.mu.Unlock()
		return func() {
			m.mu.Lock()
			delete(m.pending, domain)
			m.mu.Unlock()
			m.store.remove(f)
		}, nil
	}
	return nil, fmt.Errorf("unsupported challenge type %q", chal.Type)
}
