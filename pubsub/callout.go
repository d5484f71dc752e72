package pubsub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gale-server/gale/http1"
)

// Errors of an HTTP callout, by what the client is answered.
var (
	// ErrForbidden: the endpoint answered 403 (the client gets 403).
	ErrForbidden = errors.New("pubsub: the auth endpoint refused access")
	// ErrAuthUnavailable: the endpoint could not be asked or gave no usable answer
	// (timeout, refused connection, another status, a bad body); the client gets
	// 503 and the outcome is not cached.
	ErrAuthUnavailable = errors.New("pubsub: the auth endpoint is unavailable")
	// ErrUnauthorized: the endpoint answered 401 (the client gets 401).
	ErrUnauthorized = errors.New("pubsub: the auth endpoint did not accept the credentials")
)

// RequestAuthenticator authorises a request whose answer may need a round trip.
// AuthenticateRequest answers at once when it can (now true, with g and err);
// otherwise it reads what it needs from req before returning and calls done exactly
// once, from any goroutine, with the outcome.
type RequestAuthenticator interface {
	AuthenticateRequest(req *http1.Request, done func(g Grant, err error)) (g Grant, err error, now bool)
}

// CalloutOptions configures an HTTP callout.
type CalloutOptions struct {
	// URL is asked with GET for every connection and HTTP publish whose credentials
	// are not in the cache.
	URL string
	// Timeout bounds one call; 0 means 2 s.
	Timeout time.Duration
	// CacheTTL is how long an answer (2xx, 401 or 403) is reused for the same
	// credentials; 0 disables the cache.
	CacheTTL time.Duration
	// CacheEntries bounds the cache; 0 means 10,000.
	CacheEntries int
}

// maxCalloutBody bounds the grant body an endpoint may answer.
const maxCalloutBody = 64 << 10

// Callout is a RequestAuthenticator that asks an operator's HTTP endpoint, in the
// manner of nginx's auth_request: the client's Authorization and Cookie fields (or
// its ?token= as a bearer token) are sent on, with X-Original-URI and
// X-Original-Method; 2xx admits, 401 and 403 refuse. A 2xx body, when not empty, is
// JSON {"subscribe":[patterns],"publish":[patterns]} as in JWT claims; an empty body
// grants every topic. Answers are cached per credentials (not per URI) and
// concurrent asks with the same credentials share one call. It is safe for
// concurrent use.
type Callout struct {
	o      CalloutOptions
	client *http.Client
	now    func() time.Time

	mu       sync.Mutex
	cache    map[string]calloutEntry         // guarded by mu
	inflight map[string][]func(Grant, error) // guarded by mu: waiters per key
	calls    int                             // guarded by mu: calls made (for tests and stats)
}

type calloutEntry struct {
	g       Grant
	err     error
	expires time.Time
}

var _ RequestAuthenticator = (*Callout)(nil)

// NewCallout returns a Callout with o.
func NewCallout(o CalloutOptions) *Callout {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.CacheEntries <= 0 {
		o.CacheEntries = 10000
	}
	return &Callout{o: o, now: time.Now, cache: map[string]calloutEntry{}, inflight: map[string][]func(Grant, error){},
		client: &http.Client{Timeout: o.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Calls returns how many calls the endpoint got.
func (a *Callout) Calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// callRequest is what one call sends.
type callRequest struct {
	authorization, cookie, uri, method string
}

// AuthenticateRequest implements RequestAuthenticator.
func (a *Callout) AuthenticateRequest(req *http1.Request, done func(Grant, error)) (Grant, error, bool) {
	cr := callRequest{uri: string(req.Target), method: string(req.Method)}
	if v, ok := req.Header("Authorization"); ok {
		cr.authorization = string(v)
	} else if tok := bearer(req); tok != "" {
		cr.authorization = "Bearer " + tok
	}
	if v, ok := req.Header("Cookie"); ok {
		cr.cookie = string(v)
	}
	key := cr.authorization + "\x00" + cr.cookie
	a.mu.Lock()
	if e, ok := a.cache[key]; ok {
		if a.now().Before(e.expires) {
			a.mu.Unlock()
			return e.g, e.err, true
		}
		delete(a.cache, key)
	}
	waiters, busy := a.inflight[key]
	a.inflight[key] = append(waiters, done)
	if !busy {
		a.calls++
	}
	a.mu.Unlock()
	if !busy {
		go a.call(key, cr)
	}
	return nil, nil, false
}

// call asks the endpoint and answers every waiter of key.
func (a *Callout) call(key string, cr callRequest) {
	g, err := a.ask(cr)
	a.mu.Lock()
	waiters := a.inflight[key]
	delete(a.inflight, key)
	if a.o.CacheTTL > 0 && !errors.Is(err, ErrAuthUnavailable) {
		if len(a.cache) >= a.o.CacheEntries {
			a.evict()
		}
		a.cache[key] = calloutEntry{g: g, err: err, expires: a.now().Add(a.o.CacheTTL)}
	}
	a.mu.Unlock()
	for _, w := range waiters {
		w(g, err)
	}
}

// evict makes room in the full cache: expired entries go, and if none had, an
// arbitrary tenth of the rest. The caller holds mu.
func (a *Callout) evict() {
	now := a.now()
	for k, e := range a.cache {
		if !now.Before(e.expires) {
			delete(a.cache, k)
		}
	}
	for k := range a.cache {
		if len(a.cache) < a.o.CacheEntries*9/10 {
			break
		}
		delete(a.cache, k)
	}
}

// ask makes one call.
func (a *Callout) ask(cr callRequest) (Grant, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", a.o.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuthUnavailable, err)
	}
	if cr.authorization != "" {
		req.Header.Set("Authorization", cr.authorization)
	}
	if cr.cookie != "" {
		req.Header.Set("Cookie", cr.cookie)
	}
	req.Header.Set("X-Original-URI", cr.uri)
	req.Header.Set("X-Original-Method", cr.method)
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuthUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCalloutBody+1))
	switch {
	case resp.StatusCode == 401:
		return nil, ErrUnauthorized
	case resp.StatusCode == 403:
		return nil, ErrForbidden
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, fmt.Errorf("%w: it answered %d", ErrAuthUnavailable, resp.StatusCode)
	case err != nil:
		return nil, fmt.Errorf("%w: reading its answer: %v", ErrAuthUnavailable, err)
	case len(body) > maxCalloutBody:
		return nil, fmt.Errorf("%w: its answer is over %d bytes", ErrAuthUnavailable, maxCalloutBody)
	case len(body) == 0:
		return nil, nil
	}
	var pg patternGrant
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pg); err != nil {
		return nil, fmt.Errorf("%w: its answer is not {\"subscribe\":[…],\"publish\":[…]}: %v", ErrAuthUnavailable, err)
	}
	return &pg, nil
}

// patternGrant grants the topics its patterns match (the syntax of JWT claims).
type patternGrant struct {
	Subscribe []string `json:"subscribe"`
	Publish   []string `json:"publish"`
}

// CanSubscribe implements Grant.
func (g *patternGrant) CanSubscribe(topic string) bool { return matchAny(g.Subscribe, topic) }

// CanPublish implements Grant.
func (g *patternGrant) CanPublish(topic string) bool { return matchAny(g.Publish, topic) }
