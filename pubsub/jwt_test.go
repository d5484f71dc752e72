package pubsub

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

func token(t *testing.T, method jwt.SigningMethod, key any, exp time.Duration, sub, pub []string) string {
	t.Helper()
	c := Claims{Subscribe: sub, Publish: pub}
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(exp))
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hsAuth returns an HS256 secret and its authenticator, taking tokens up to leeway
// past their exp.
func hsAuth(t *testing.T, leeway time.Duration) ([]byte, *JWTAuth) {
	t.Helper()
	secret := []byte("0123456789abcdef0123456789abcdef")
	auth, err := NewJWTAuth(secret)
	if err != nil {
		t.Fatal(err)
	}
	auth.setLeeway(leeway)
	return secret, auth
}

// TestJWT checks each algorithm with a real token: a good one connects, subscribes
// and publishes where its claims allow; an expired one, one signed with another key
// and one whose claims do not name the topic are refused (401 at the handshake, 403
// for a topic it lacks, a "forbidden" reply for a command it lacks).
func TestJWT(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	rk2, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ek2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name         string
		method       jwt.SigningMethod
		sign, verify any
		wrong        any // signs the forged token
	}{
		{"HS256", jwt.SigningMethodHS256, secret, secret, []byte("another secret of 32 bytes......")},
		{"RS256", jwt.SigningMethodRS256, rk, &rk.PublicKey, rk2},
		{"ES256", jwt.SigningMethodES256, ek, &ek.PublicKey, ek2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth, err := NewJWTAuth(tc.verify)
			if err != nil {
				t.Fatal(err)
			}
			_, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode, Auth: auth})
			_, paddr := startHub(t, Options{}, HandlerOptions{Mode: PathMode, Auth: auth})
			good := token(t, tc.method, tc.sign, time.Hour, []string{"news.*"}, []string{"news.local"})
			expired := token(t, tc.method, tc.sign, -time.Hour, []string{"*"}, []string{"*"})
			forged := token(t, tc.method, tc.wrong, time.Hour, []string{"*"}, []string{"*"})

			refuse := func(url, tok string, want int) {
				t.Helper()
				hdr := http.Header{}
				if tok != "" {
					hdr.Set("Authorization", "Bearer "+tok)
				}
				d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
				c, resp, err := d.Dial(url, hdr)
				if err == nil {
					c.Close()
					t.Fatalf("%s: handshake accepted", url)
				}
				if resp == nil || resp.StatusCode != want {
					t.Fatalf("%s: %v, want status %d", url, err, want)
				}
			}
			refuse("ws://"+addr+"/ws/", "", 401)
			refuse("ws://"+addr+"/ws/", expired, 401)
			refuse("ws://"+addr+"/ws/", forged, 401)
			refuse("ws://"+addr+"/ws/", "not.a.jwt", 401)
			refuse("ws://"+paddr+"/ws/sport", good, 403) // path mode: the path's topic is not granted
			pc := wsDial(t, "ws://"+paddr+"/ws/news.x?token="+good, nil)
			pc.Close()

			c := wsDial(t, "ws://"+addr+"/ws/", http.Header{"Authorization": {"Bearer " + good}})
			send(t, c, `{"type":"subscribe","id":1,"topic":"sport"}`)
			if r := readReply(t, c); r.Type != "error" || r.Code != ErrCodeForbidden {
				t.Fatalf("subscribe to an ungranted topic: %+v", r)
			}
			send(t, c, `{"type":"subscribe","id":2,"topic":"news.local"}`)
			if r := readReply(t, c); r.Type != "subscribed" {
				t.Fatalf("granted subscribe: %+v", r)
			}
			send(t, c, `{"type":"publish","id":3,"topic":"news.world","data":1}`)
			if r := readReply(t, c); r.Type != "error" || r.Code != ErrCodeForbidden {
				t.Fatalf("publish to an ungranted topic: %+v", r)
			}
			send(t, c, `{"type":"publish","id":4,"topic":"news.local","data":1}`)
			// The publisher is a subscriber too: its own delivery (first, made on its
			// loop during the publish) and the reply.
			if r := readReply(t, c); r.Type != "message" || r.Topic != "news.local" {
				t.Fatalf("own delivery: %+v", r)
			}
			if r := readReply(t, c); r.Type != "published" {
				t.Fatalf("granted publish: %+v", r)
			}
			// HTTP publish with the token: granted topic 200, other 403, forged 401.
			for _, p := range []struct {
				tok, topic, status string
			}{{good, "news.local", "200"}, {good, "news.world", "403"}, {forged, "news.local", "401"}, {expired, "news.local", "401"}, {"", "news.local", "401"}} {
				args := []string{"-s", "-i", "--data-binary", "x", "http://" + addr + "/ws/publish/" + p.topic}
				if p.tok != "" {
					args = append(args, "-H", "Authorization: Bearer "+p.tok)
				}
				head, _ := testkit.Curl(t, args...)
				if got := testkit.StatusOf(head); got != p.status {
					t.Fatalf("HTTP publish to %s: %s, want %s\n%s", p.topic, got, p.status, head)
				}
			}
			// An SSE subscription checks the same claims.
			head, _ := testkit.Curl(t, "-s", "-i", "-H", "Accept: text/event-stream", "http://"+addr+"/ws/sse/news.local")
			if !strings.Contains(head, " 401") {
				t.Fatalf("SSE without a token: %s", head)
			}
		})
	}
	if _, err := NewJWTAuth([]byte("short")); err == nil {
		t.Fatal("a short HS256 secret was accepted")
	}
}

// TestJWTExpiryEndsSubscriptions: a connection admitted with a token keeps its
// subscriptions only until the token's exp: a message published after it reaches
// none of them, and ends them, a path-mode and a protocol WebSocket with close 1008,
// SSE streams over HTTP/1.1 and HTTP/2 with their end (EventSource then reconnects,
// with a fresh token or to a 401). Before, a subscription made before exp kept
// receiving for as long as the connection lived.
func TestJWTExpiryEndsSubscriptions(t *testing.T) {
	// Rights end at exp itself (TestJWTLeewayGrants has the leeway).
	secret, auth := hsAuth(t, 0)
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second) // exp has whole seconds
	c := Claims{Subscribe: []string{"*"}, Publish: []string{"*"}}
	c.ExpiresAt = jwt.NewNumericDate(exp)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	hd, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode, Auth: auth})
	phd, paddr := startHub(t, Options{}, HandlerOptions{Mode: PathMode, Auth: auth})
	h2hd, err := NewHandler(New(Options{Loops: 2}), HandlerOptions{Prefix: "/ws/", Mode: ProtocolMode, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	h2addr := startH2Hub(t, h2hd)

	path := wsDial(t, "ws://"+paddr+"/ws/news?token="+tok, nil)
	proto := wsDial(t, "ws://"+addr+"/ws/", http.Header{"Authorization": {"Bearer " + tok}})
	send(t, proto, `{"type":"subscribe","id":1,"topic":"news"}`)
	if r := readReply(t, proto); r.Type != "subscribed" {
		t.Fatalf("subscribe: %+v", r)
	}
	sse := curlStream(t, "http://"+addr+"/ws/sse/news?token="+tok)
	expectLines(t, sse, ": subscribed")
	h2, cancel := h2Stream(t, testkit.H2CClient(t), "http://"+h2addr+"/ws/sse/news?token="+tok)
	defer cancel()
	waitCount(t, hd.Hub(), "news", 2)
	waitCount(t, h2hd.Hub(), "news", 1)
	waitCount(t, phd.Hub(), "news", 1)
	hubs := []*Hub{hd.Hub(), phd.Hub(), h2hd.Hub()}
	publish := func(data string) {
		for _, h := range hubs {
			// Acquired: after exp the connections may have ended, and the topic
			// with them, before the publish.
			tp, err := h.Acquire("news")
			if err != nil {
				t.Fatal(err)
			}
			tp.Publish(websocket.TextMessage, []byte(data), nil)
			h.Release(tp)
		}
	}
	publish(`"before"`)
	for _, c := range []*websocket.Conn{path, proto} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, p, err := c.ReadMessage(); err != nil || !strings.Contains(string(p), "before") {
			t.Fatalf("before exp: %q %v", p, err)
		}
	}
	testkit.WaitFor(t, "the token's exp", func() bool { return time.Now().After(exp) })
	publish(`"after"`)
	for _, c := range []*websocket.Conn{path, proto} {
		_, p, err := c.ReadMessage()
		if err == nil {
			t.Fatalf("after exp: %q", p)
		}
		if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			t.Fatalf("WebSocket ended with %v, want close 1008 after the token's exp", err)
		}
	}
	for name, lines := range map[string]<-chan string{"SSE": sse, "SSE over HTTP/2": h2} {
		deadline := time.After(10 * time.Second)
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				if strings.Contains(l, "after") {
					t.Fatalf("%s after exp: %q", name, l)
				}
			case <-deadline:
				t.Fatalf("%s still open 10 s after the token's exp", name)
			}
		}
	}
	for _, h := range hubs {
		waitCount(t, h, "news", 0)
	}
}

// TestJWTExpiryClosesIdleConnections: connections admitted by a token end at its exp
// even when nothing is published and the client is silent: a path-mode and a
// protocol WebSocket get close 1008, SSE streams over HTTP/1.1 and HTTP/2 end, within a
// second or so of exp. The loop's one expiry timer does it, not a timer per
// connection. Before, an idle connection stayed open after exp until some traffic
// (a message, a command, the SSE heartbeat 25 s later, or a ping), with its
// subscriptions (epoll and io_uring).
func TestJWTExpiryClosesIdleConnections(t *testing.T) {
	secret, auth := hsAuth(t, 0) // rights end at exp itself (TestJWTLeewayGrants has the leeway)
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			exp := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
			c := Claims{Subscribe: []string{"*"}}
			c.ExpiresAt = jwt.NewNumericDate(exp)
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
			if err != nil {
				t.Fatal(err)
			}
			// A second token, valid for long, whose connection must stay.
			long := token(t, jwt.SigningMethodHS256, secret, time.Hour, []string{"*"}, nil)
			hd, addr := startHubOn(t, eng, Options{}, HandlerOptions{Mode: ProtocolMode, Auth: auth, WebSocket: wsOptionsNoTimers()})
			phd, paddr := startHubOn(t, eng, Options{}, HandlerOptions{Mode: PathMode, Auth: auth, WebSocket: wsOptionsNoTimers()})
			path := wsDial(t, "ws://"+paddr+"/ws/news?token="+tok, nil)
			stays := wsDial(t, "ws://"+paddr+"/ws/news?token="+long, nil)
			proto := wsDial(t, "ws://"+addr+"/ws/", http.Header{"Authorization": {"Bearer " + tok}})
			send(t, proto, `{"type":"subscribe","id":1,"topic":"news"}`)
			if r := readReply(t, proto); r.Type != "subscribed" {
				t.Fatalf("subscribe: %+v", r)
			}
			sse := testkit.Dial(t, addr)
			if _, err := sse.Write([]byte("GET /ws/sse/news?token=" + tok + " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			// HTTP/2 on a server of its own, so with a hub of its own (a hub's loops
			// are one engine's).
			h2hd, err := NewHandler(New(Options{Loops: 2}), HandlerOptions{Prefix: "/ws/", Mode: ProtocolMode, Auth: auth})
			if err != nil {
				t.Fatal(err)
			}
			h2, _ := h2Stream(t, testkit.H2CClient(t), "http://"+startH2Hub(t, h2hd)+"/ws/sse/news?token="+tok)
			waitCount(t, h2hd.Hub(), "news", 1)
			waitCount(t, hd.Hub(), "news", 2)
			waitCount(t, phd.Hub(), "news", 2)

			for name, ws := range map[string]*websocket.Conn{"path mode": path, "protocol": proto} {
				ws.SetReadDeadline(exp.Add(3 * time.Second))
				_, p, err := ws.ReadMessage()
				if err == nil {
					t.Fatalf("%s: a message %q, want the close", name, p)
				}
				if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
					t.Fatalf("%s WebSocket ended with %v, want close 1008 by exp+3s", name, err)
				}
				if time.Now().Before(exp) {
					t.Fatalf("%s closed before exp", name)
				}
			}
			sse.SetReadDeadline(exp.Add(3 * time.Second))
			if _, err := io.ReadAll(sse); err != nil {
				t.Fatalf("SSE stream not ended by exp+3s: %v", err)
			}
			for ended := time.After(time.Until(exp.Add(3 * time.Second))); ; {
				select {
				case _, ok := <-h2:
					if ok {
						continue
					}
				case <-ended:
					t.Fatal("SSE stream over HTTP/2 not ended by exp+3s")
				}
				break
			}
			waitCount(t, hd.Hub(), "news", 0)
			waitCount(t, h2hd.Hub(), "news", 0)
			waitCount(t, phd.Hub(), "news", 1)
			// The connection of the long token is served on.
			phd.Hub().Lookup("news").Publish(websocket.TextMessage, []byte("still"), nil)
			stays.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, p, err := stays.ReadMessage(); err != nil || string(p) != "still" {
				t.Fatalf("long token's connection: %q %v", p, err)
			}
		})
	}
}

// TestJWTLeewayGrants: a token taken within the leeway past its exp (clock skew) grants
// what it says until exp plus the leeway: the path-mode handshake succeeds, an SSE
// request is served, a protocol subscribe is answered subscribed; then the
// connections end (1008). Before, the handshake took the token but its rights had
// ended at exp: 403 "the token does not grant this topic" for the topic it names, and
// forbidden for every command.
func TestJWTLeewayGrants(t *testing.T) {
	const leeway = 3 * time.Second
	secret, auth := hsAuth(t, leeway)
	exp := time.Now().Truncate(time.Second).Add(-time.Second) // 1-2 s ago
	c := Claims{Subscribe: []string{"*"}}
	c.ExpiresAt = jwt.NewNumericDate(exp)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode, Auth: auth, WebSocket: wsOptionsNoTimers()})
	_, paddr := startHub(t, Options{}, HandlerOptions{Mode: PathMode, Auth: auth, WebSocket: wsOptionsNoTimers()})
	path := wsDial(t, "ws://"+paddr+"/ws/news?token="+tok, nil)
	proto := wsDial(t, "ws://"+addr+"/ws/?token="+tok, nil)
	send(t, proto, `{"type":"subscribe","id":1,"topic":"news"}`)
	if r := readReply(t, proto); r.Type != "subscribed" {
		t.Fatalf("subscribe within the leeway: %+v", r)
	}
	sse := testkit.Dial(t, addr)
	if _, err := sse.Write([]byte("GET /ws/sse/news?token=" + tok + " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(sse).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("SSE within the leeway: %q %v", line, err)
	}
	for _, ws := range []*websocket.Conn{path, proto} {
		ws.SetReadDeadline(exp.Add(leeway + 3*time.Second))
		_, _, err := ws.ReadMessage()
		if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			t.Fatalf("WebSocket ended with %v, want close 1008 after exp and the leeway", err)
		}
		if time.Now().Before(exp.Add(leeway)) {
			t.Fatal("closed before exp and the leeway")
		}
	}
}
