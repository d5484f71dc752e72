package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ACME obtains and renews a server's certificate from an ACME certificate
// authority (see docs/tls.md#acme).
type ACME struct {
	// Email is the account's contact address.
	Email string `yaml:"email"`
	// CA is the ACME directory URL.
	CA string `yaml:"ca"`
	// Domains are the certificate's DNS names.
	Domains []string `yaml:"domains"`
	// Storage is the directory of the account key, certificate and lock, shared
	// by the worker processes.
	Storage string `yaml:"storage" conf:"path"`
	// CARoot, when set, is a PEM bundle that verifies the CA's HTTPS certificate
	// instead of the system's roots (test CAs such as Pebble).
	CARoot string `yaml:"ca_root" conf:"path"`
	// Challenges are the challenge types to use, in order of preference.
	Challenges []string `yaml:"challenges"`
	// RenewBefore is how long before expiry the certificate is renewed.
	RenewBefore time.Duration `yaml:"renew_before"`
	// RetryMin is the first wait after a failed order; it doubles up to RetryMax.
	RetryMin time.Duration `yaml:"retry_min"`
	// RetryMax is the longest wait between failed orders.
	RetryMax time.Duration `yaml:"retry_max"`
	// Poll is how often a process that does not order looks for the certificate
	// another process wrote.
	Poll time.Duration `yaml:"poll"`
}

// DefaultACMECA is the default ACME directory: Let's Encrypt's production CA.
const DefaultACMECA = "https://acme-v02.api.letsencrypt.org/directory"

// SetDefaults sets every field of a to its default.
func (a *ACME) SetDefaults() {
	*a = ACME{CA: DefaultACMECA, Storage: "/var/lib/gale/acme", Challenges: []string{"tls-alpn-01", "http-01"},
		RenewBefore: 30 * 24 * time.Hour, RetryMin: time.Minute, RetryMax: 6 * time.Hour, Poll: 10 * time.Second}
}

// acme checks a TLS section's acme mapping.
func (v *validator) acme(p string, a *ACME) {
	p = joinPath(p, "acme")
	if len(a.Domains) == 0 {
		v.errorf(joinPath(p, "domains"), "at least one domain is required")
	}
	for i, d := range a.Domains {
		if !validHostname(d) || strings.Contains(d, "_") {
			v.errorf(fmt.Sprintf("%s.domains[%d]", p, i), "%q is not a DNS name (wildcards need DNS-01, which gale does not answer)", d)
		}
	}
	if u, err := url.Parse(a.CA); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.errorf(joinPath(p, "ca"), "%q is not an http(s) directory URL", a.CA)
	}
	if a.Storage == "" {
		v.errorf(joinPath(p, "storage"), "a storage directory is required")
	}
	if a.Email != "" && !strings.Contains(a.Email, "@") {
		v.errorf(joinPath(p, "email"), "%q is not an email address", a.Email)
	}
	if a.CARoot != "" {
		if _, err := ClientCAPool(a.CARoot); err != nil {
			v.errorf(joinPath(p, "ca_root"), "%v", err)
		}
	}
	if len(a.Challenges) == 0 {
		v.errorf(joinPath(p, "challenges"), "at least one challenge type is required")
	}
	known := []string{"tls-alpn-01", "http-01"}
	for i, c := range a.Challenges {
		if !slices.Contains(known, c) {
			v.errorf(fmt.Sprintf("%s.challenges[%d]", p, i), "unknown challenge type %q (known: %s)%s", c, strings.Join(known, ", "), didYouMean(c, known))
		}
	}
	if a.RenewBefore <= 0 || a.RetryMin <= 0 || a.RetryMax < a.RetryMin || a.Poll <= 0 {
		v.errorf(p, "renew_before, retry_min and poll must be positive and retry_max at least retry_min")
	}
}
