package proxy

import (
	"encoding/pem"
	"strings"

	"github.com/gale-server/gale/server"
)

// clientCertVars are the set_headers values that stand for what the client's
// TLS connection found of its certificate, as nginx's variables of the same
// names: proxy_set_header X-Client-Verify $ssl_client_verify.
var clientCertVars = map[string]func(*server.ClientCert) string{
	"$ssl_client_verify":       func(c *server.ClientCert) string { return c.Verify },
	"$ssl_client_s_dn":         func(c *server.ClientCert) string { return c.SubjectDN },
	"$ssl_client_i_dn":         func(c *server.ClientCert) string { return c.IssuerDN },
	"$ssl_client_serial":       func(c *server.ClientCert) string { return c.Serial },
	"$ssl_client_fingerprint":  func(c *server.ClientCert) string { return c.Fingerprint },
	"$ssl_client_escaped_cert": escapedCert,
}

// escapedCert is the client's certificate in PEM, percent-encoded as nginx's
// $ssl_client_escaped_cert is (what origins read from X-SSL-Client-Cert and
// the like): every byte but letters, digits and "-_.~" as %XX.
func escapedCert(c *server.ClientCert) string {
	if c.Raw == nil {
		return ""
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	var b strings.Builder
	b.Grow(len(p) * 3 / 2)
	const hexDigits = "0123456789ABCDEF"
	for _, ch := range p {
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_' || ch == '.' || ch == '~' {
			b.WriteByte(ch)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[ch>>4])
			b.WriteByte(hexDigits[ch&15])
		}
	}
	return b.String()
}

// IsClientCertVar reports whether a set_headers value is one of the client
// certificate variables ($ssl_client_verify, $ssl_client_s_dn,
// $ssl_client_i_dn, $ssl_client_serial, $ssl_client_fingerprint,
// $ssl_client_escaped_cert).
func IsClientCertVar(v string) bool { _, ok := clientCertVars[v]; return ok }

// clientCertValue returns the value of variable v for client c: "NONE" for
// $ssl_client_verify on a TLS connection whose listener asks for no
// certificate, and "" (the field is not sent, as nginx sends no empty
// proxy_set_header) on a plain connection or without a certificate.
func clientCertValue(v string, c clientSide) string {
	cc := c.ClientCert()
	if cc == nil {
		if v == "$ssl_client_verify" && c.TLSVersion() != 0 {
			return "NONE"
		}
		return ""
	}
	return clientCertVars[v](cc)
}
