package pubsub

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/websocket"
	"github.com/gale-server/gale/wsserver"
)

// Mode is how a route's WebSocket clients name their topics.
type Mode uint8

// Modes of a Handler.
const (
	// PathMode puts every client of a path on one topic (the path after the
	// route's prefix); what a client sends goes to the others as it came.
	PathMode Mode = iota
	// ProtocolMode speaks the JSON protocol: any number of topics per connection.
	ProtocolMode
)

// Grant is what a client may do; nil grants everything.
type Grant interface {
	CanSubscribe(topic string) bool
	CanPublish(topic string) bool
}

// Authenticator turns a request's credentials into a Grant. token is the bearer
// token from the Authorization field or the "token" query parameter ("" when none).
type Authenticator interface {
	Authenticate(token string) (Grant, error)
}

// ErrNoToken is returned by authenticators when a token is required and missing.
var ErrNoToken = errors.New("pubsub: a bearer token is required")

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	// Prefix is the route's path prefix; the topic of a path is what follows it.
	Prefix string
	Mode   Mode
	// WebSocket configures the WebSocket side (handshake policy, timeouts, limits).
	WebSocket wsserver.Options
	// Auth, when set, is asked for every connection and HTTP publish.
	Auth Authenticator
	// Callout, when set (and Auth is not), authorises every connection and HTTP
	// publish instead, possibly after a round trip (an HTTP callout).
	Callout RequestAuthenticator
	// PublishToken, when set, is a bearer token that may publish over HTTP to any
	// topic.
	PublishToken string
	// MaxTopics bounds a protocol connection's subscriptions; 0 means 100.
	MaxTopics int
}

// Handler serves a hub on a route: WebSocket clients, SSE subscribers, HTTP
// publishing and presence (docs/pubsub.md). It is a server.Handler.
type Handler struct {
	h     *Hub
	o     HandlerOptions
	ws    *wsserver.Server
	sse   *sseHandler
	slots []wsSlot // index: loop ID; the client being upgraded, owned by that loop
}

type wsSlot struct{ c *wsClient }

var (
	_ server.Handler         = (*Handler)(nil)
	_ server.ExchangeHandler = (*Handler)(nil)
)

// NewHandler returns a Handler serving h.
func NewHandler(h *Hub, o HandlerOptions) (*Handler, error) {
	if o.MaxTopics <= 0 {
		o.MaxTopics = 100
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	hd := &Handler{h: h, o: o, slots: make([]wsSlot, len(h.loops))}
	wo := o.WebSocket
	// The hub applies its own slow-consumer policy; wsserver's mark only bounds
	// replies to a client that stopped reading.
	if wo.HighWater <= 0 {
		wo.HighWater = h.opts.SocketBytes + (4 << 20)
	}
	ws, err := wsserver.New(&wsApp{hd: hd}, wo)
	if err != nil {
		return nil, err
	}
	hd.ws = ws
	hd.sse = &sseHandler{hd: hd, slots: make([]*sseClient, len(h.loops))}
	return hd, nil
}

// Hub returns the handler's hub.
func (hd *Handler) Hub() *Hub { return hd.h }

// WebSocketStats returns the counters of the WebSocket side.
func (hd *Handler) WebSocketStats() wsserver.Stats { return hd.ws.Stats() }

// topicOf returns the topic named by path below the prefix, after skip ("publish/"),
// or answers the request itself: 404 with usage when the path names no topic, 400 when
// the name is no valid topic (over MaxTopicBytes, not UTF-8, control characters).
func (hd *Handler) topicOf(c server.Exchange, skip, usage string) (string, bool) {
	p := string(c.NormPath())
	name, found := strings.CutPrefix(p, hd.o.Prefix+skip)
	switch {
	case !found || name == "":
		c.Error(404, usage)
		return "", false
	case !ValidTopic(name):
		c.Error(400, fmt.Sprintf("invalid topic: 1 to %d bytes of UTF-8 without control characters", MaxTopicBytes))
		return "", false
	}
	return name, true
}

// bearer returns the request's token: "Authorization: Bearer …" or ?token=.
func bearer(req *http1.Request) string {
	if v, ok := req.Header("Authorization"); ok {
		if len(v) > 7 && strings.EqualFold(string(v[:7]), "bearer ") {
			return string(bytes.TrimSpace(v[7:]))
		}
		return ""
	}
	for q := range strings.SplitSeq(string(req.Query), "&") {
		if t, ok := strings.CutPrefix(q, "token="); ok {
			return t
		}
	}
	return ""
}

// authorize runs then(grant) on the request's loop once the request is allowed in,
// and answers 401, 403 or 503 instead when it is not. With a Callout the answer may
// come later: the exchange is then detached and then runs from a posted task. req
// is the request of c (Ctx.Request, or requestOf for an HTTP/2 stream).
func (hd *Handler) authorize(c server.Exchange, req *http1.Request, then func(Grant)) {
	switch {
	case hd.o.Auth != nil:
		g, err := hd.o.Auth.Authenticate(bearer(req))
		hd.authorized(c, g, err, then)
	case hd.o.Callout != nil:
		g, err, now := hd.o.Callout.AuthenticateRequest(req, func(g Grant, err error) {
			c.Post(func() { hd.authorized(c, g, err, then) })
		})
		if now {
			hd.authorized(c, g, err, then)
			return
		}
		c.Detach()
	default:
		then(nil)
	}
}

// authorized answers a refused request or runs then.
func (hd *Handler) authorized(c server.Exchange, g Grant, err error, then func(Grant)) {
	switch {
	case err == nil:
		then(g)
	case errors.Is(err, ErrForbidden):
		c.Error(403, "access refused")
	case errors.Is(err, ErrAuthUnavailable):
		refuse(c, 503, "authorisation unavailable", "Retry-After", "1")
	default:
		c.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		c.Respond(401, "text/plain; charset=utf-8", []byte(err.Error()+"\n"))
	}
}

// ServeGale dispatches a request: a WebSocket handshake, an SSE subscription (GET
// accepting text/event-stream), POST {prefix}publish/{topic}, or GET
// {prefix}presence[/{topic}].
func (hd *Handler) ServeGale(c *server.Ctx) {
	req := c.Request()
	method := string(req.Method)
	switch {
	case method == "GET" && req.Upgrade && req.HasToken("Upgrade", "websocket"):
		// Only a WebSocket upgrade is one: another (Upgrade: h2c, which curl --http2
		// sends with every request) is ignored and the request served as HTTP/1.1,
		// as RFC 9110 §7.8 lets a server do.
		hd.serveWebSocket(c)
	case method == "POST":
		hd.servePublish(c, req)
	case method == "GET" || method == "HEAD":
		if accept, _ := req.Header("Accept"); bytes.Contains(accept, []byte("text/event-stream")) {
			hd.serveSSE(c)
			return
		}
		hd.servePresence(c, req)
	default:
		refuse(c, 405, "expected GET or POST", "Allow", "GET, POST")
	}
}

// ServeExchange serves the requests of HTTP/2 streams as ServeGale serves HTTP/1.1
// ones: SSE subscriptions (the events go out as the stream's DATA frames), HTTP
// publishing and presence. WebSocket needs HTTP/1.1 (gale does not speak RFC 8441's
// extended CONNECT), so a WebSocket client of an HTTP/2 server opens an HTTP/1.1
// connection, as browsers do.
func (hd *Handler) ServeExchange(x server.Exchange) {
	if c, ok := x.(*server.Ctx); ok {
		hd.ServeGale(c)
		return
	}
	req := requestOf(x)
	switch method := string(x.Method()); {
	case method == "POST":
		hd.servePublish(x, req)
	case method == "GET" || method == "HEAD":
		if accept, _ := x.ReqHeader("Accept"); bytes.Contains(accept, []byte("text/event-stream")) {
			hd.serveSSEStream(x, req)
			return
		}
		hd.servePresence(x, req)
	default:
		refuse(x, 405, "expected GET or POST", "Allow", "GET, POST")
	}
}

// requestOf returns the http1.Request view of an HTTP/2 stream's request that the
// authenticators and the body limit read: method, target, path, query, the fields
// and the declared length. It shares x's memory, which the stream owns until its
// response ends.
func requestOf(x server.Exchange) *http1.Request {
	req := &http1.Request{Method: x.Method(), Target: x.Target(), Path: x.Path(), Query: x.Query(),
		NormPath: x.NormPath(), Host: x.Host(), Minor: 1, ContentLength: -1}
	x.EachReqHeader(func(name, value []byte) {
		req.Headers = append(req.Headers, http1.Header{Name: name, Value: value})
		if http1.EqualFold(name, "content-length") {
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil && n >= 0 {
				req.ContentLength = n
			}
		}
	})
	return req
}

// loopOf returns the loop of an exchange (a Ctx or an HTTP/2 stream).
func loopOf(x server.Exchange) *engine.Loop {
	return x.(interface{ Loop() *engine.Loop }).Loop()
}

func (hd *Handler) serveWebSocket(c *server.Ctx) {
	cl := &wsClient{hd: hd}
	if hd.o.Mode == PathMode {
		name, ok := hd.topicOf(c, "", "no topic in the path")
		if !ok {
			return
		}
		cl.topicName = name
	}
	hd.authorize(c, c.Request(), func(g Grant) {
		if hd.o.Mode == PathMode && g != nil && !g.CanSubscribe(cl.topicName) {
			c.Error(403, "the token does not grant this topic")
			return
		}
		if hd.o.Mode == PathMode && !hd.h.Admits(cl.topicName) {
			refuseTopicLimit(c)
			return
		}
		cl.grant = g
		slot := &hd.slots[c.Loop().ID()]
		slot.c = cl
		_ = hd.ws.Upgrade(c)
		slot.c = nil
	})
}

// servePublish answers POST {prefix}publish/{topic}: the body is the message (text
// when it is UTF-8, binary otherwise). req is c's request.
func (hd *Handler) servePublish(c server.Exchange, req *http1.Request) {
	name, ok := hd.topicOf(c, "publish/", "expected POST "+hd.o.Prefix+"publish/{topic}")
	if !ok {
		return
	}
	tok := bearer(req)
	switch {
	case hd.o.PublishToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(hd.o.PublishToken)) == 1:
		hd.publishBody(c, req, name)
	case hd.o.Auth != nil && tok != "" || hd.o.Callout != nil:
		hd.authorize(c, req, func(g Grant) {
			if g != nil && !g.CanPublish(name) {
				c.Error(403, "the token does not grant publishing to this topic")
				return
			}
			hd.publishBody(c, req, name)
		})
	case hd.o.PublishToken == "" && hd.o.Auth == nil:
		c.Error(403, "HTTP publishing needs publish_token, jwt or auth_request in the configuration")
	case tok != "":
		// A token was presented and is not the one: RFC 6750 §3.1's invalid_token.
		refuse(c, 401, "the bearer token is not valid", "WWW-Authenticate", `Bearer error="invalid_token"`)
	default:
		// No token: a bare challenge (RFC 6750 §3.1 has no error code then).
		refuse(c, 401, "a valid bearer token is required", "WWW-Authenticate", "Bearer")
	}
}

// publishBody reads the body of an allowed HTTP publish and publishes it.
func (hd *Handler) publishBody(c server.Exchange, req *http1.Request, name string) {
	limit := hd.o.WebSocket.MaxMessageBytes
	if limit <= 0 {
		limit = websocket.DefaultMaxMessageBytes
	}
	if req.ContentLength > limit {
		// Refused before the body is read (and before 100 Continue): the connection
		// closes after the answer, so the unread body does not matter.
		c.Error(413, "message over max_message_bytes")
		return
	}
	c.ReadBody(func(body []byte) {
		if int64(len(body)) > limit {
			c.Error(413, "message over max_message_bytes")
			return
		}
		ct, _ := c.ReqHeader("Content-Type")
		if declaresJSON(ct) && !json.Valid(body) {
			// Taken as text, it would reach JSON subscribers as a string where the
			// publisher meant a value: refused instead.
			c.Error(400, "the body is declared JSON (Content-Type) and is not valid JSON")
			return
		}
		op := websocket.OpText
		if !utf8.Valid(body) || len(ct) > 0 && !declaresText(ct) {
			// A body declared binary (application/octet-stream, protobuf, an
			// image…) stays binary even when its bytes happen to be UTF-8.
			op = websocket.OpBinary
		}
		t, err := hd.h.Acquire(name)
		if errors.Is(err, ErrTopicLimit) {
			refuseTopicLimit(c)
			return
		}
		if err != nil {
			c.Error(400, err.Error())
			return
		}
		off := t.PublishOn(loopOf(c), op, body, nil)
		hd.h.Release(t)
		b := append([]byte(`{"topic":`), appendJSONString(nil, name)...)
		b = append(b, `,"offset":`...)
		b = strconv.AppendUint(b, off, 10)
		b = append(b, "}\n"...)
		c.Respond(200, "application/json", b)
	})
}

// declaresJSON reports whether a Content-Type value names JSON: application/json or
// a +json suffix (RFC 6839), parameters aside, compared without case.
func declaresJSON(ct []byte) bool {
	mt, _, _ := strings.Cut(string(ct), ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// declaresText reports whether a Content-Type value names text: text/*, JSON, XML
// (RFC 7303, +xml too), JavaScript, YAML or a form (application/x-www-form-urlencoded,
// what curl -d sends), parameters aside, compared without case.
func declaresText(ct []byte) bool {
	mt, _, _ := strings.Cut(string(ct), ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch mt {
	case "application/xml", "application/x-www-form-urlencoded", "application/javascript", "application/yaml":
		return true
	}
	if strings.HasPrefix(mt, "text/") || declaresJSON(ct) {
		return true
	}
	return strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+xml")
}

// refuse answers a refused request as server.Ctx.Error does (a text/plain body
// naming the status and msg) with the one header field the status calls for (Allow
// for 405, WWW-Authenticate for 401, Retry-After for 503). Ctx.Error clears the
// fields set before it, so it cannot carry them. It is for statuses that leave the
// connection usable (401, 403, 405, 503).
func refuse(c server.Exchange, status int, msg, name, value string) {
	c.Header().Reset()
	c.Header().Set(name, value)
	c.Respond(status, "text/plain; charset=utf-8", []byte(http1.StatusText(status)+": "+msg+"\n"))
}

// refuseTopicLimit answers a request that needs a topic a full hub cannot create
// (ErrTopicLimit): 503 with Retry-After, since topics expire and the request may
// succeed later; an existing topic is still served.
func refuseTopicLimit(c server.Exchange) {
	refuse(c, 503, "the hub holds its limit of topics (max_hub_topics)", "Retry-After", "1")
}

// servePresence answers GET {prefix}presence (every topic) and
// {prefix}presence/{topic}. With jwt or auth_request it needs a token, as
// subscribing does: a topic is answered when the grant allows subscribing to it
// (403 otherwise), and the list holds the granted topics only; publish_token sees
// every topic. Without either it is open, like subscribing. req is c's request.
func (hd *Handler) servePresence(c server.Exchange, req *http1.Request) {
	path := string(c.NormPath())
	all := path == hd.o.Prefix+"presence"
	name := ""
	switch {
	case all:
	case strings.HasPrefix(path, hd.o.Prefix+"presence/"):
		var ok bool
		if name, ok = hd.topicOf(c, "presence/", "expected GET "+hd.o.Prefix+"presence/{topic}"); !ok {
			return
		}
	default:
		c.Error(400, "expected a WebSocket handshake, an SSE request (Accept: text/event-stream) or GET "+hd.o.Prefix+"presence")
		return
	}
	answer := func(g Grant) {
		if !all && g != nil && !g.CanSubscribe(name) {
			c.Error(403, "the token does not grant this topic")
			return
		}
		hd.presence(c, all, name, g)
	}
	tok := bearer(req)
	switch {
	case hd.o.Auth == nil && hd.o.Callout == nil:
		answer(nil)
	case hd.o.PublishToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(hd.o.PublishToken)) == 1:
		answer(nil)
	case hd.o.Auth != nil && tok == "":
		refuse(c, 401, "a valid bearer token is required", "WWW-Authenticate", "Bearer")
	default:
		hd.authorize(c, req, answer)
	}
}

// presence answers a presence request allowed with grant g (nil: every topic): the
// list of topics (those g grants subscribing to) or topic name.
func (hd *Handler) presence(c server.Exchange, all bool, name string, g Grant) {
	var v any
	if all {
		ps := hd.h.Presence()
		if g != nil {
			kept := ps[:0]
			for _, p := range ps {
				if g.CanSubscribe(p.Topic) {
					kept = append(kept, p)
				}
			}
			ps = kept
		}
		v = ps
	} else {
		p := Presence{Topic: name}
		if t := hd.h.Lookup(name); t != nil {
			p.Epoch, p.Offset = t.Epoch()
			p.Subscribers = t.Count()
		}
		v = p
	}
	b, _ := json.Marshal(v)
	c.Respond(200, "application/json", append(b, '\n'))
}
