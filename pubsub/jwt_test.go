package pubsub

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"

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
