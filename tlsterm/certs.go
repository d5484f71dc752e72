package tlsterm

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// CertFiles names one certificate: a PEM file with the certificate and its chain,
// the PEM private key, and optionally a DER OCSP response to staple.
type CertFiles struct {
	Cert, Key, OCSP string
}

// Certs is an immutable set of certificates chosen by the client's SNI name:
// exactly, then by a wildcard certificate for the name's parent domain ("*.a.b"
// covers "x.a.b", not "a.b" nor "y.x.a.b"), else the first certificate (also the
// choice for clients that send no name).
//
// Several certificates may cover the same names (an RSA one beside an ECDSA
// one, as nginx allows several ssl_certificate): the first, in the order
// listed, that the client can use (its signature algorithms, curves and, in
// TLS 1.2, cipher suites; tls.ClientHelloInfo.SupportsCertificate) is chosen,
// and the first when it can use none. The default is the first certificate
// and those for exactly its names.
type Certs struct {
	list     []*tls.Certificate
	defaults []*tls.Certificate            // list[0] and the others for exactly its names
	exact    map[string][]*tls.Certificate // in the order listed
	wildcard map[string][]*tls.Certificate // key: the domain below the "*."
	// staples are the certificates whose OCSP staple has a nextUpdate: from
	// then on they are served without it (see staple.current). Nil when none.
	staples map[*tls.Certificate]staple
}

// staple is when a certificate's OCSP response goes stale, and the same
// certificate without it.
type staple struct {
	until time.Time
	bare  *tls.Certificate
}

// current returns c, or c without its OCSP staple once the response's
// nextUpdate has passed: a stale response is no evidence a client should
// accept (RFC 6960 §4.2.2.1; Firefox and OpenSSL clients that check it refuse
// the connection or report an error), and no staple at all leaves the client
// to its own revocation policy. nginx staples a stapling file for good.
func (s *Certs) current(c *tls.Certificate) *tls.Certificate {
	if st, ok := s.staples[c]; ok && !time.Now().Before(st.until) {
		return st.bare
	}
	return c
}

// CertError is a certificate or key file that could not be used; Index is its
// position in the list given to LoadCerts.
type CertError struct {
	Index int
	File  string
	Err   error
}

func (e *CertError) Error() string { return e.File + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *CertError) Unwrap() error { return e.Err }

// LoadCerts reads every certificate and key (PEM, chains included) and indexes
// them by the DNS names of their leaf certificates (subject alternative names,
// or the common name when there are none). The first error is returned as a
// *CertError.
func LoadCerts(files []CertFiles) (*Certs, error) {
	if len(files) == 0 {
		return nil, errors.New("tlsterm: no certificate")
	}
	var list []*tls.Certificate
	staples := map[*tls.Certificate]staple{}
	for i, f := range files {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			file := f.Cert
			if _, rerr := os.Stat(f.Cert); rerr == nil && strings.Contains(err.Error(), "private key") {
				file = f.Key
			}
			return nil, &CertError{Index: i, File: file, Err: err}
		}
		if f.OCSP != "" {
			der, err := os.ReadFile(f.OCSP)
			if err != nil {
				return nil, &CertError{Index: i, File: f.OCSP, Err: err}
			}
			bare := c
			c.OCSPStaple = der
			if r, err := ocsp.ParseResponse(der, nil); err == nil && !r.NextUpdate.IsZero() {
				staples[&c] = staple{until: r.NextUpdate, bare: &bare}
			}
		}
		list = append(list, &c)
	}
	s, err := NewCerts(list)
	if err == nil && len(staples) > 0 {
		s.staples = staples
	}
	return s, err
}

// NewCerts indexes certificates already loaded (their Leaf is parsed when nil).
func NewCerts(list []*tls.Certificate) (*Certs, error) {
	if len(list) == 0 {
		return nil, errors.New("tlsterm: no certificate")
	}
	s := &Certs{list: list, exact: map[string][]*tls.Certificate{}, wildcard: map[string][]*tls.Certificate{}}
	var first string // the names of list[0]
	for i, c := range list {
		if c.Leaf == nil {
			leaf, err := x509.ParseCertificate(c.Certificate[0])
			if err != nil {
				return nil, &CertError{Index: i, Err: fmt.Errorf("parsing the leaf certificate: %w", err)}
			}
			c.Leaf = leaf
		}
		names := c.Leaf.DNSNames
		if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
			names = []string{c.Leaf.Subject.CommonName}
		}
		norm := make([]string, len(names))
		for j, n := range names {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			norm[j] = n
			if d, ok := strings.CutPrefix(n, "*."); ok {
				s.wildcard[d] = append(s.wildcard[d], c)
			} else {
				s.exact[n] = append(s.exact[n], c)
			}
		}
		slices.Sort(norm)
		if key := strings.Join(slices.Compact(norm), " "); i == 0 || key == first {
			first = key
			s.defaults = append(s.defaults, c)
		}
	}
	return s, nil
}

// Len returns the number of certificates.
func (s *Certs) Len() int { return len(s.list) }

// Choose returns the certificate for an SNI name (see Certs).
func (s *Certs) Choose(name string) *tls.Certificate {
	return s.chooseFor(&tls.ClientHelloInfo{ServerName: name})
}

// chooseFor returns the certificate for the client of h: the one for its SNI
// name, else the default.
func (s *Certs) chooseFor(h *tls.ClientHelloInfo) *tls.Certificate {
	if c, ok := s.lookupFor(h); ok {
		return c
	}
	return s.defaultFor(h)
}

// defaultFor returns the default certificate the client of h can use. Which
// it can use is asked without its SNI name, which the default does not cover
// (SupportsCertificate checks the name too).
func (s *Certs) defaultFor(h *tls.ClientHelloInfo) *tls.Certificate {
	if len(s.defaults) > 1 && h.ServerName != "" {
		anon := *h
		anon.ServerName = ""
		h = &anon
	}
	return s.current(usable(s.defaults, h))
}

// Config returns a TLS configuration that chooses from s by SNI (see Choose);
// set versions, suites and client authentication on it before use.
func (s *Certs) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.chooseFor(h), nil
		},
	}
}

// Lookup returns the certificate that covers an SNI name exactly or by wildcard
// (see Certs), and false when none does (Choose then returns the default).
func (s *Certs) Lookup(name string) (*tls.Certificate, bool) {
	return s.lookupFor(&tls.ClientHelloInfo{ServerName: name})
}

// lookupFor is Lookup for the client of h, which chooses among certificates
// for the same name.
func (s *Certs) lookupFor(h *tls.ClientHelloInfo) (*tls.Certificate, bool) {
	name := h.ServerName
	if name == "" {
		return nil, false
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if cs, ok := s.exact[name]; ok {
		return s.current(usable(cs, h)), true
	}
	// A wildcard stands for one label of a host name (RFC 6125 §6.4.3): not
	// an empty one (".a.b"), nor "*" itself.
	if first, d, ok := strings.Cut(name, "."); ok && first != "" && first != "*" {
		if cs, ok := s.wildcard[d]; ok {
			return s.current(usable(cs, h)), true
		}
	}
	return nil, false
}

// usable returns the first of cs the client of h can use, or cs[0] when it
// can use none (its handshake then fails as it would have).
func usable(cs []*tls.Certificate, h *tls.ClientHelloInfo) *tls.Certificate {
	if len(cs) > 1 {
		for _, c := range cs {
			if h.SupportsCertificate(c) == nil {
				return c
			}
		}
	}
	return cs[0]
}

// CertSource is a certificate that changes over the server's life (ACME's,
// acmecert.Manager) for a fixed set of names.
type CertSource interface {
	// Covers reports whether the source serves the SNI name.
	Covers(name string) bool
	// Certificate returns the current certificate, nil while there is none.
	Certificate() *tls.Certificate
}

// Selector chooses a handshake's certificate from the certificate sources
// (first, for the names they cover), then the static certificates, and applies
// the policy for names nothing covers. It is immutable.
type Selector struct {
	// Static are the configured certificate files; may be nil.
	Static *Certs
	// Sources are the dynamic certificates, consulted in order.
	Sources []CertSource
	// RejectUnknown, when set, refuses a name nothing covers with an
	// unrecognized_name alert instead of serving the default certificate. A
	// client that sends no name always gets the default.
	RejectUnknown bool
}

// GetCertificate is a tls.Config.GetCertificate. The default certificate is
// Static's first, or the first source's when there are no static ones. A nil
// result with no error makes crypto/tls send unrecognized_name. An IP address
// sent as the SNI name (RFC 6066 §3 permits only host names, but some clients
// send the address they connect to) counts as no name: it gets the default
// certificate under either policy.
func (s *Selector) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := h.ServerName
	if net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")) != nil {
		name = ""
	}
	if name != "" {
		for _, src := range s.Sources {
			if src.Covers(name) {
				return src.Certificate(), nil
			}
		}
		if s.Static != nil {
			if c, ok := s.Static.lookupFor(h); ok {
				return c, nil
			}
		}
		if s.RejectUnknown {
			return nil, nil
		}
	}
	if s.Static != nil {
		return s.Static.defaultFor(h), nil
	}
	if len(s.Sources) > 0 {
		return s.Sources[0].Certificate(), nil
	}
	return nil, nil
}

// Config returns a TLS configuration that chooses certificates with s; set
// versions, suites and client authentication on it before use.
func (s *Selector) Config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.GetCertificate}
}
