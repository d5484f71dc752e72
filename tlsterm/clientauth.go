package tlsterm

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gale-server/gale/server"
)

// ClientVerify is how client certificates are asked for and checked, nginx's
// ssl_verify_client.
type ClientVerify uint8

const (
	// VerifyOff asks for no certificate.
	VerifyOff ClientVerify = iota
	// VerifyOn requires a certificate that verifies against ClientAuth.CAs: a
	// client without one, or with one that does not verify, completes its
	// handshake and every request is answered 400 (nginx's "on").
	VerifyOn
	// VerifyOptional asks for a certificate: a client without one is served
	// (ClientCert.Verify "NONE"), one whose certificate does not verify is
	// answered 400.
	VerifyOptional
	// VerifyOptionalNoCA asks for a certificate and serves a client whose
	// certificate has an issuer the CAs do not know ("FAILED:…"); other failures
	// (expired, wrong key usage) are answered 400, as nginx's optional_no_ca.
	VerifyOptionalNoCA
)

// The texts of the 400 answers to a refused client certificate (nginx's).
const (
	RefuseNoCert    = "No required SSL certificate was sent"
	RefuseCertError = "The SSL certificate error"
)

// ClientAuth configures client certificates of a Terminator (Options.ClientAuth,
// SetConfigAuth). It is immutable once in use.
type ClientAuth struct {
	Mode ClientVerify
	// CAs verify the client's certificate and are listed in the server's
	// certificate request; nil with VerifyOptionalNoCA (no certificate verifies).
	CAs *x509.CertPool
	// ID names the CAs across reloads and processes (a hash of the bundle, say):
	// a session resumes only under the Mode and ID it was established with, as
	// OpenSSL's session id context does for nginx, so that a client whose
	// session came from a handshake that asked for no certificate, or for
	// another CA's, makes a full handshake and sends the one asked for now
	// instead of being refused with its old session.
	ID string
}

// authExtra tags the SessionState.Extra entry that records the client
// authentication a session was established under (ClientAuth.sessionTag).
const authExtra = "gale-auth\x00"

// sessionTag is the SessionState.Extra entry of sessions established under a
// (nil: no client certificate asked for).
func (a *ClientAuth) sessionTag() []byte {
	if a == nil || a.Mode == VerifyOff {
		return []byte(authExtra)
	}
	return []byte(authExtra + string(rune('0'+a.Mode)) + a.ID)
}

// resumes reports whether a session with the Extra entries extra may resume
// under a: it was established under the same client authentication. A
// session without an entry (issued before gale recorded it) counts as
// established without.
func (a *ClientAuth) resumes(extra [][]byte) bool {
	want := a.sessionTag()
	for _, e := range extra {
		if bytes.HasPrefix(e, []byte(authExtra)) {
			return bytes.Equal(e, want)
		}
	}
	return string(want) == authExtra
}

// The results of a client without a certificate, shared (a ClientCert is
// immutable): no allocation per connection.
var (
	noCert        = &server.ClientCert{Verify: "NONE"}
	noCertRefused = &server.ClientCert{Verify: "NONE", Refuse: RefuseNoCert}
)

// check verifies the certificates a client sent (leaf first), at now, and
// returns what the connection's requests are served with.
func (a *ClientAuth) check(certs []*x509.Certificate, now time.Time) *server.ClientCert {
	cc, _ := a.verify(certs, now)
	return cc
}

// verify is check that also returns the verified chains (nil unless Verify is
// SUCCESS), for the connection state's VerifiedChains.
func (a *ClientAuth) verify(certs []*x509.Certificate, now time.Time) (*server.ClientCert, [][]*x509.Certificate) {
	if len(certs) == 0 {
		if a.Mode == VerifyOn {
			return noCertRefused, nil
		}
		return noCert, nil
	}
	leaf := certs[0]
	sum := sha1.Sum(leaf.Raw)
	cc := &server.ClientCert{
		Verify:      "SUCCESS",
		SubjectDN:   dnString(leaf.RawSubject),
		IssuerDN:    dnString(leaf.RawIssuer),
		Serial:      serialHex(leaf),
		Fingerprint: hex.EncodeToString(sum[:]),
		Raw:         leaf.Raw,
	}
	opts := x509.VerifyOptions{
		Roots:         a.CAs,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if opts.Roots == nil {
		opts.Roots = x509.NewCertPool() // never the system roots
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := leaf.Verify(opts)
	if err == nil {
		return cc, chains
	}
	var unknown x509.UnknownAuthorityError
	isUnknown := errors.As(err, &unknown)
	cc.Verify = "FAILED:" + verifyReason(err, certs, now)
	if a.Mode != VerifyOptionalNoCA || !isUnknown {
		cc.Refuse = RefuseCertError
	}
	return cc, nil
}

// serialHex is a certificate's serial number as OpenSSL prints it (nginx's
// $ssl_client_serial): upper-case hex in whole bytes, so with a leading zero
// when the number has an odd count of digits.
func serialHex(c *x509.Certificate) string {
	h := strings.ToUpper(c.SerialNumber.Text(16))
	if len(h)%2 == 1 {
		h = "0" + h
	}
	return h
}

// verifyReason names a verification failure in OpenSSL's words, as nginx's
// $ssl_client_verify does ("FAILED:certificate has expired").
func verifyReason(err error, certs []*x509.Certificate, now time.Time) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		if selfSigned(certs[0]) {
			return "self-signed certificate"
		}
		if slices.ContainsFunc(certs[1:], selfSigned) {
			return "self-signed certificate in certificate chain" // the client sent a root the CAs do not hold
		}
		return "unable to get local issuer certificate"
	case errors.As(err, &invalid):
		switch invalid.Reason {
		case x509.Expired:
			if now.Before(invalid.Cert.NotBefore) {
				return "certificate is not yet valid"
			}
			return "certificate has expired"
		case x509.IncompatibleUsage:
			return "unsupported certificate purpose"
		}
	}
	return err.Error()
}

// selfSigned reports whether c is issued by itself (a root).
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// ClientCert returns what the handshake found of the client's certificate: nil
// when the terminator's ClientAuth asked for none (server.Ctx.ClientCert).
func (c *tconn) ClientCert() *server.ClientCert { return c.cert }
