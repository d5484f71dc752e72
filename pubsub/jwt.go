package pubsub

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the JWT claims the hub reads: the registered ones (exp is required)
// and the topic patterns the bearer may subscribe to and publish to. A pattern is a
// topic name, "*" (every topic), or a prefix ending in "*" ("news.*").
type Claims struct {
	jwt.RegisteredClaims
	Subscribe []string `json:"subscribe,omitempty"`
	Publish   []string `json:"publish,omitempty"`
}

// JWTAuth is an Authenticator of signed tokens with one key: HS256 with a shared
// secret, RS256 with an RSA public key or ES256 with an ECDSA P-256 public key.
type JWTAuth struct {
	key    any
	parser *jwt.Parser
	now    func() time.Time
	alg    string
	leeway time.Duration // jwtLeeway; tests shorten it (setLeeway)
}

var _ Authenticator = (*JWTAuth)(nil)

// NewJWTAuth returns an authenticator for key: []byte (HS256), *rsa.PublicKey
// (RS256) or *ecdsa.PublicKey on P-256 (ES256). Tokens signed with any other
// algorithm are refused, whatever their header says.
func NewJWTAuth(key any) (*JWTAuth, error) {
	var alg string
	switch k := key.(type) {
	case []byte:
		if len(k) < 32 {
			return nil, errors.New("pubsub: an HS256 secret needs at least 32 bytes")
		}
		alg = "HS256"
	case *rsa.PublicKey:
		alg = "RS256"
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("pubsub: ES256 needs a P-256 key")
		}
		alg = "ES256"
	default:
		return nil, fmt.Errorf("pubsub: unsupported JWT key type %T", key)
	}
	a := &JWTAuth{key: key, now: time.Now, alg: alg}
	a.setLeeway(jwtLeeway)
	return a, nil
}

// setLeeway sets how long past its exp a token is taken, at the handshake and for
// the rights of its connection.
func (a *JWTAuth) setLeeway(d time.Duration) {
	a.leeway = d
	a.parser = jwt.NewParser(jwt.WithValidMethods([]string{a.alg}), jwt.WithExpirationRequired(), jwt.WithLeeway(d))
}

// LoadJWTKey reads the key of a jwt configuration: the HS256 secret in secretFile
// (surrounding white space removed) or the PEM public key in publicKeyFile.
func LoadJWTKey(secretFile, publicKeyFile string) (any, error) {
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return nil, err
		}
		return []byte(strings.TrimSpace(string(b))), nil
	}
	b, err := os.ReadFile(publicKeyFile)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", publicKeyFile)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", publicKeyFile, err)
	}
	return k, nil
}

// Authenticate implements Authenticator: it verifies the token's signature and
// expiry and returns its grant.
func (a *JWTAuth) Authenticate(token string) (Grant, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	var c Claims
	if _, err := a.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.key, nil }); err != nil {
		return nil, fmt.Errorf("pubsub: token refused: %w", err)
	}
	return &jwtGrant{c: &c, now: a.now, leeway: a.leeway}, nil
}

// jwtLeeway is how long past its exp a token is still taken (clock skew between the
// issuer and gale): at the handshake and for the rights of the connection it admitted.
// JWTAuth.setLeeway changes it for tests.
const jwtLeeway = 5 * time.Second

// jwtGrant is a verified token's permissions; they end with the token, at its exp
// plus jwtLeeway.
type jwtGrant struct {
	c      *Claims
	now    func() time.Time
	leeway time.Duration
}

// expiry implements expiring: the connection's rights end at the token's exp, with
// the leeway the handshake gave it. Without it a token admitted within the leeway
// granted nothing: 403 for the topic it names, forbidden for every command.
func (g *jwtGrant) expiry() time.Time { return g.c.ExpiresAt.Add(g.leeway) }

func (g *jwtGrant) live() bool { return g.c.ExpiresAt != nil && g.now().Before(g.expiry()) }

// CanSubscribe implements Grant.
func (g *jwtGrant) CanSubscribe(topic string) bool { return g.live() && matchAny(g.c.Subscribe, topic) }

// CanPublish implements Grant.
func (g *jwtGrant) CanPublish(topic string) bool { return g.live() && matchAny(g.c.Publish, topic) }

func matchAny(patterns []string, topic string) bool {
	for _, p := range patterns {
		if p == topic || p == "*" || (strings.HasSuffix(p, "*") && strings.HasPrefix(topic, p[:len(p)-1])) {
			return true
		}
	}
	return false
}
