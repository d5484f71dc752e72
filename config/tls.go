package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TLS terminates TLS on every listen address of a server (see docs/tls.md).
type TLS struct {
	// Certificates are chosen by the client's SNI name; the first is the default.
	Certificates []Certificate `yaml:"certificates"`
	// ACME, when set, obtains and renews a certificate for its domains, used for
	// those names (and as the default when Certificates is empty).
	ACME *ACME `yaml:"acme,omitempty"`
	// UnknownSNI says what a client whose SNI name no certificate covers gets:
	// "default" (the default certificate) or "reject" (an unrecognized_name alert).
	UnknownSNI string `yaml:"unknown_sni" conf:"enum=default|reject"`
	// MinVersion is the lowest protocol version accepted: "1.2" or "1.3".
	MinVersion string `yaml:"min_version" conf:"enum=1.2|1.3"`
	// CipherSuites restricts the TLS 1.2 cipher suites (Go's names); empty keeps
	// Go's secure defaults. TLS 1.3 suites are not configurable.
	CipherSuites []string `yaml:"cipher_suites"`
	// Curves lists the key exchange groups offered, in order of preference
	// (nginx's ssl_ecdh_curve): x25519mlkem768, x25519, p256, p384, p521,
	// secp256r1mlkem768, secp384r1mlkem1024. Empty keeps Go's defaults, which
	// put the post-quantum hybrid X25519MLKEM768 first.
	Curves []string `yaml:"curves"`
	// ClientCA, when set, is a PEM bundle: clients must present a certificate
	// signed by one of its CAs (mutual TLS).
	ClientCA string `yaml:"client_ca" conf:"path"`
	// VerifyClient is how client certificates are asked for, nginx's
	// ssl_verify_client: "on" (required; a client without a valid one is answered
	// 400), "optional" (asked for; a client without one is served, one with an
	// invalid one answered 400), "optional_no_ca" (asked for; an issuer client_ca
	// does not know is served) or "off". Empty: "on" with client_ca, else "off".
	VerifyClient string `yaml:"verify_client"`
	// HSTS, when positive, is the max-age of a Strict-Transport-Security header
	// added to every response of the server.
	HSTS time.Duration `yaml:"hsts"`
	// RedirectHTTP lists plain HTTP listen addresses whose every request is
	// redirected (308) to https on this server.
	RedirectHTTP []string `yaml:"redirect_http"`
	// HandshakeTimeout bounds a TLS handshake.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// TicketKeyFile, when set, is a file of at least 32 secret bytes from which
	// the session ticket keys are derived, so that every process and host with
	// the file resumes the others' sessions. Without it, worker processes share a
	// secret their parent generates; a single process lets crypto/tls manage keys.
	TicketKeyFile string `yaml:"ticket_key_file" conf:"path"`
	// TicketRotation is how long one ticket key encrypts new tickets; the previous
	// key is still accepted for as long again.
	TicketRotation time.Duration `yaml:"ticket_rotation"`
}

// SetDefaults sets every field of t to its default.
func (t *TLS) SetDefaults() {
	*t = TLS{MinVersion: "1.2", UnknownSNI: "default", HandshakeTimeout: 10 * time.Second, TicketRotation: 12 * time.Hour}
}

// Certificate is one certificate with its key, and optionally an OCSP response
// to staple.
type Certificate struct {
	// Cert is a PEM file: the certificate, then its chain.
	Cert string `yaml:"cert" conf:"path"`
	// Key is the PEM private key.
	Key string `yaml:"key" conf:"path"`
	// OCSPStaple is a DER OCSP response file sent with the certificate.
	OCSPStaple string `yaml:"ocsp_staple" conf:"path"`
}

// The values of TLS.VerifyClient.
const (
	VerifyOn           = "on"
	VerifyOptional     = "optional"
	VerifyOptionalNoCA = "optional_no_ca"
	VerifyOff          = "off"
)

// ClientVerify returns the effective VerifyClient: its value, or when empty
// "on" with a client_ca (what client_ca alone has always meant) and "off"
// without.
func (t *TLS) ClientVerify() string {
	switch {
	case t.VerifyClient != "":
		return t.VerifyClient
	case t.ClientCA != "":
		return VerifyOn
	}
	return VerifyOff
}

// TLSVersion returns the crypto/tls value of MinVersion.
func (t *TLS) TLSVersion() uint16 {
	if t.MinVersion == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// CipherSuiteIDs returns the ids of CipherSuites (nil: Go's defaults); names
// are checked by Validate.
func (t *TLS) CipherSuiteIDs() []uint16 {
	var ids []uint16
	for _, n := range t.CipherSuites {
		for _, s := range tls.CipherSuites() {
			if s.Name == n {
				ids = append(ids, s.ID)
			}
		}
	}
	return ids
}

// curveNames are the names Curves accepts, with OpenSSL's for the NIST curves.
var curveNames = map[string]tls.CurveID{
	"x25519mlkem768": tls.X25519MLKEM768, "x25519": tls.X25519,
	"p256": tls.CurveP256, "p384": tls.CurveP384, "p521": tls.CurveP521,
	"prime256v1": tls.CurveP256, "secp384r1": tls.CurveP384, "secp521r1": tls.CurveP521,
	"secp256r1mlkem768": tls.SecP256r1MLKEM768, "secp384r1mlkem1024": tls.SecP384r1MLKEM1024,
}

// CurveIDs returns the ids of Curves (nil: Go's defaults); names are checked
// by Validate.
func (t *TLS) CurveIDs() []tls.CurveID {
	var ids []tls.CurveID
	for _, n := range t.Curves {
		if id, ok := curveNames[strings.ToLower(n)]; ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// tls checks a server's TLS section: the certificate and key files load, the
// cipher suites exist, the CA bundle parses.
func (v *validator) tls(sp string, t *TLS) {
	p := joinPath(sp, "tls")
	if t.ACME != nil {
		v.acme(p, t.ACME)
	} else if len(t.Certificates) == 0 {
		v.errorf(joinPath(p, "certificates"), "at least one certificate (or an acme section) is required")
	}
	var keys []certKey // of the certificates that load, for the suites' check
	if t.ACME != nil {
		keys = append(keys, certKey{"the acme certificate", "ECDSA"})
	}
	for i, c := range t.Certificates {
		cp := fmt.Sprintf("%s.certificates[%d]", p, i)
		switch {
		case c.Cert == "":
			v.errorf(cp, "cert is required")
		case c.Key == "":
			v.errorf(cp, "key is required")
		default:
			if kp, err := tls.LoadX509KeyPair(c.Cert, c.Key); err != nil {
				v.errorf(joinPath(cp, keyAtFault(c, err)), "loading %s with key %s: %v", c.Cert, c.Key, err)
			} else {
				keys = append(keys, certKey{c.Cert, signatureKind(kp.PrivateKey)})
				if c.OCSPStaple != "" {
					if err := checkStaple(c.OCSPStaple, kp); err != nil {
						v.errorf(joinPath(cp, "ocsp_staple"), "%v", err)
					}
				}
			}
		}
	}
	var names []string
	for _, s := range tls.CipherSuites() {
		names = append(names, s.Name)
	}
	suitesOK := true
	for i, n := range t.CipherSuites {
		sp := fmt.Sprintf("%s.cipher_suites[%d]", p, i)
		switch {
		case !slices.Contains(names, n):
			v.errorf(sp, "unknown or insecure cipher suite %q%s", n, didYouMean(n, names))
			suitesOK = false
		case !strings.Contains(n, "_WITH_"):
			v.errorf(sp, "%q is a TLS 1.3 suite: cipher_suites lists TLS 1.2 suites (TLS 1.3's are always enabled and not configurable)", n)
			suitesOK = false
		}
	}
	if suitesOK && len(t.CipherSuites) > 0 && t.MinVersion != "1.3" {
		for _, k := range keys {
			if k.kind != "" && !slices.ContainsFunc(t.CipherSuites, func(n string) bool { return strings.HasPrefix(n, "TLS_ECDHE_"+k.kind+"_") }) {
				v.errorf(joinPath(p, "cipher_suites"), "no suite listed can be used with the %s key of %s: TLS 1.2 handshakes choosing it would fail; list a TLS_ECDHE_%s_ suite", k.kind, k.file, k.kind)
			}
		}
	}
	curves := slices.Sorted(maps.Keys(curveNames))
	for i, n := range t.Curves {
		if _, ok := curveNames[strings.ToLower(n)]; !ok {
			v.errorf(fmt.Sprintf("%s.curves[%d]", p, i), "unknown key exchange group %q%s", n, didYouMean(strings.ToLower(n), curves))
		}
	}
	if t.ClientCA != "" {
		if _, err := ClientCAPool(t.ClientCA); err != nil {
			v.errorf(joinPath(p, "client_ca"), "%v", err)
		}
	}
	switch t.VerifyClient {
	case "", VerifyOff, VerifyOptionalNoCA:
	case VerifyOn, VerifyOptional:
		if t.ClientCA == "" {
			v.errorf(joinPath(p, "verify_client"), "verify_client %q needs client_ca, the CA certificates client certificates are verified with (optional_no_ca does without)", t.VerifyClient)
		}
	default:
		modes := []string{VerifyOn, VerifyOptional, VerifyOptionalNoCA, VerifyOff}
		v.errorf(joinPath(p, "verify_client"), "invalid value %q: expected one of %s%s", t.VerifyClient, strings.Join(modes, ", "), didYouMean(t.VerifyClient, modes))
	}
	if t.TicketKeyFile != "" {
		if _, err := ReadTicketKey(t.TicketKeyFile); err != nil {
			v.errorf(joinPath(p, "ticket_key_file"), "%v", err)
		}
	}
	if t.TicketRotation <= 0 {
		v.errorf(joinPath(p, "ticket_rotation"), "must be positive")
	}
	if t.HSTS < 0 || t.HandshakeTimeout <= 0 {
		v.errorf(p, "hsts must not be negative and handshake_timeout must be positive")
	}
}

// keyAtFault returns which of a certificate's fields ("cert" or "key") the
// error of loading them is about, for its position: the file that cannot be
// read, else the key for crypto/tls's complaints about the key (it does not
// parse, is not a key, or does not match the certificate: nginx reports that
// at ssl_certificate_key too).
func keyAtFault(c Certificate, err error) string {
	if _, rerr := os.Stat(c.Cert); rerr != nil {
		return "cert"
	}
	if _, rerr := os.Stat(c.Key); rerr != nil {
		return "key"
	}
	if m := err.Error(); (strings.Contains(m, "private key") || strings.Contains(m, "key input")) && !strings.Contains(m, "certificate input") {
		return "key"
	}
	return "cert"
}

// checkStaple reads an OCSP response file and checks that it can be stapled to
// kp: a successful OCSP response (RFC 6960), about kp's leaf certificate, signed
// by its issuer when the chain holds it, and not saying the certificate is
// revoked. A client given another certificate's response, a "tryLater" one or
// bytes that do not parse fails or distrusts the handshake, as does one told
// the certificate is revoked (nginx refuses a stapling file that does not parse).
func checkStaple(file string, kp tls.Certificate) error {
	der, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		return err
	}
	var issuer *x509.Certificate
	if len(kp.Certificate) > 1 {
		if issuer, err = x509.ParseCertificate(kp.Certificate[1]); err != nil {
			return err
		}
	}
	r, err := ocsp.ParseResponse(der, issuer)
	switch {
	case err != nil:
		return fmt.Errorf("%s is not an OCSP response for the certificate: %v", file, err)
	case r.SerialNumber.Cmp(leaf.SerialNumber) != 0:
		return fmt.Errorf("%s is the OCSP response of certificate serial %x, not of the certificate's (%x)", file, r.SerialNumber, leaf.SerialNumber)
	case r.Status == ocsp.Revoked:
		return fmt.Errorf("%s says the certificate was revoked at %s", file, r.RevokedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// certKey is a certificate file and the kind of TLS 1.2 suite its key signs
// for: "ECDSA" (ECDSA and Ed25519 keys), "RSA", or "" when unknown.
type certKey struct{ file, kind string }

// signatureKind returns the certKey kind of a private key.
func signatureKind(k crypto.PrivateKey) string {
	s, ok := k.(crypto.Signer)
	if !ok {
		return ""
	}
	switch s.Public().(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return "ECDSA"
	case *rsa.PublicKey:
		return "RSA"
	}
	return ""
}

// tlsProtocols checks the protocols that depend on TLS: h2 needs a TLS section and
// h2c (cleartext) cannot have one. With h2c refused, a TLS server always lists
// http1, which serves clients that do not choose h2 with ALPN.
func (v *validator) tlsProtocols(s *Server, path string) {
	switch {
	case s.TLS == nil && s.HasProtocol(ProtoH2):
		v.errorf(path, "%q is HTTP/2 over TLS: it needs a tls section (use %q for cleartext HTTP/2)", ProtoH2, ProtoH2C)
	case s.TLS != nil && s.HasProtocol(ProtoH2C):
		v.errorf(path, "%q is cleartext HTTP/2: over TLS list %q", ProtoH2C, ProtoH2)
	}
}

// ReadTicketKey reads a session ticket key file: at least 32 bytes, used whole.
func ReadTicketKey(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if len(b) < 32 {
		return nil, fmt.Errorf("%s: %d bytes, a ticket key file needs at least 32 (head -c 48 /dev/urandom > FILE)", file, len(b))
	}
	return b, nil
}

// ClientCAPool reads a PEM bundle of CA certificates.
func ClientCAPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate found", file)
	}
	return pool, nil
}
