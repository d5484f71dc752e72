package tlsterm

import (
	"crypto/tls"
	"slices"
)

// h2Usable reports whether a handshake with the client hello h under c can end
// with a cipher suite HTTP/2 allows: TLS 1.3, or a TLS 1.2 suite both sides
// support that is not on RFC 9113 Appendix A's prohibited list. When it cannot,
// the handshake offers HTTP/1 alone, as RFC 9113 §9.2.2 intends ("this allows
// servers to select HTTP/1.1 with a cipher suite that is on the HTTP/2
// prohibited list"): browsers fail an h2 connection on a prohibited suite
// (INADEQUATE_SECURITY), and a client offering only such suites is old enough
// to be better served by HTTP/1.1. A configuration whose cipher_suites are all
// prohibited then serves TLS 1.2 clients HTTP/1.1 and TLS 1.3 clients HTTP/2.
func h2Usable(h *tls.ClientHelloInfo, c *tls.Config) bool {
	if (c.MaxVersion == 0 || c.MaxVersion >= tls.VersionTLS13) && slices.Contains(h.SupportedVersions, tls.VersionTLS13) {
		return true
	}
	for _, id := range h.CipherSuites {
		if h2Suite(id) && (c.CipherSuites == nil || slices.Contains(c.CipherSuites, id)) {
			return true
		}
	}
	return false
}

// h2Suite reports whether id is a TLS 1.2 suite crypto/tls implements that RFC
// 9113 Appendix A does not prohibit: ephemeral key exchange with an AEAD cipher.
func h2Suite(id uint16) bool {
	switch id {
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return true
	}
	return false
}
