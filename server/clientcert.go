package server

// ClientCert is what a TLS layer found of the client's certificate, once per
// connection, when the listener asks for one (nginx's ssl_verify_client and its
// $ssl_client_* variables; docs/tls.md#client-certificates). It is immutable.
type ClientCert struct {
	// Verify is the verification result: "SUCCESS", "NONE" (no certificate was
	// sent) or "FAILED:" and the reason, as nginx's $ssl_client_verify.
	Verify string
	// Refuse, when not empty, is why every request of the connection must be
	// answered 400 instead of being served: "No required SSL certificate was
	// sent" or "The SSL certificate error", nginx's texts.
	Refuse string
	// SubjectDN and IssuerDN are the certificate's subject and issuer in RFC 2253
	// form ("CN=client,O=Example"), empty without a certificate.
	SubjectDN, IssuerDN string
	// Serial is the serial number in upper-case hex, Fingerprint the SHA-1 of the
	// DER certificate in lower-case hex ($ssl_client_serial, $ssl_client_fingerprint).
	Serial, Fingerprint string
	// Raw is the client's DER certificate (its leaf), nil without one.
	Raw []byte
}

// clientCerter is the optional method of a TLS layer (package tlsterm) that
// reports the client's certificate.
type clientCerter interface{ ClientCert() *ClientCert }

// ClientCert returns what the connection's TLS layer found of the client's
// certificate: nil on a plain connection or when the listener does not ask
// clients for certificates.
func (c *Ctx) ClientCert() *ClientCert {
	if v, ok := c.Layer().(clientCerter); ok {
		return v.ClientCert()
	}
	return nil
}

// ClientCert returns what the stream's TLS connection found of the client's
// certificate, as Ctx.ClientCert does; nil on h2c.
func (x *h2x) ClientCert() *ClientCert {
	if v, ok := x.hc.lay.(clientCerter); ok {
		return v.ClientCert()
	}
	return nil
}

// ExchangeClientCert returns the ClientCert of an exchange of any protocol (a
// *Ctx or an HTTP/2 stream): nil when it has none.
func ExchangeClientCert(x Exchange) *ClientCert {
	if v, ok := x.(clientCerter); ok {
		return v.ClientCert()
	}
	return nil
}
