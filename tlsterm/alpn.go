package tlsterm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"slices"
)

// h2Usable reports whether a handshake with the client hello h under c can end
// with a cipher suite HTTP/2 allows: TLS 1.3, or a TLS 1.2 suite both sides
// support that is not on RFC 9113 Appendix A's prohibited list and that the
// certificate chosen for h can sign for. When it cannot, the handshake offers
// HTTP/1 alone, as RFC 9113 §9.2.2 intends ("this allows servers to select
// HTTP/1.1 with a cipher suite that is on the HTTP/2 prohibited list"): browsers
// fail an h2 connection on a prohibited suite (INADEQUATE_SECURITY), and a client
// offering only such suites is old enough to be better served by HTTP/1.1. A
// configuration whose cipher_suites are all prohibited then serves TLS 1.2 clients
// HTTP/1.1 and TLS 1.3 clients HTTP/2.
func h2Usable(h *tls.ClientHelloInfo, c *tls.Config) bool {
	if (c.MaxVersion == 0 || c.MaxVersion >= tls.VersionTLS13) && slices.Contains(h.SupportedVersions, tls.VersionTLS13) {
		return true
	}
	ecdsaKey, rsaKey := certKeys(h, c)
	for _, id := range h.CipherSuites {
		if c.CipherSuites != nil && !slices.Contains(c.CipherSuites, id) {
			continue
		}
		switch id {
		case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
			if ecdsaKey {
				return true
			}
		case tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
			if rsaKey {
				return true
			}
		}
	}
	return false
}

// certKeys reports which of the ECDHE_ECDSA (an ECDSA or Ed25519 key) and
// ECDHE_RSA suites the certificate c serves for h can be used with. When the
// certificate cannot be looked up here, both are assumed.
func certKeys(h *tls.ClientHelloInfo, c *tls.Config) (ecdsaKey, rsaKey bool) {
	var cert *tls.Certificate
	switch {
	case c.GetCertificate != nil:
		cert, _ = c.GetCertificate(h)
	case len(c.Certificates) > 0:
		cert = &c.Certificates[0]
	}
	if cert == nil {
		return true, true
	}
	s, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return true, true
	}
	switch s.Public().(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return true, false
	case *rsa.PublicKey:
		return false, true
	}
	return true, true
}
