package pubsub

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/wsserver"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// rawHTTP sends req on a new connection and returns the first response that is not
// a 1xx one, with every interim status line seen before it.
func rawHTTP(t *testing.T, addr, req string) (interim []string, resp *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the response to %q: %v", req, err)
		}
		if r.StatusCode >= 200 {
			return interim, r
		}
		interim = append(interim, r.Status)
	}
}

// TestRefusalsCarryTheirFields checks the header fields the statuses of the HTTP side
// require: 405 names the methods in Allow (RFC 9110 §15.5.6), a publish without a
// token gets 401 with WWW-Authenticate (§15.5.2), one with a wrong token that
// challenge with error="invalid_token" (RFC 6750 §3.1), and a body announced over
// max_message_bytes is refused with 413 at once, without 100 Continue and without
// being read.
func TestRefusalsCarryTheirFields(t *testing.T) {
	_, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode, PublishToken: "tok",
		WebSocket: wsserver.Options{MaxMessageBytes: 4 << 10}})
	_, r := rawHTTP(t, addr, "PUT /ws/publish/news HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
	if r.StatusCode != 405 || r.Header.Get("Allow") != "GET, POST" {
		t.Fatalf("PUT: %d, Allow %q; want 405 with Allow: GET, POST", r.StatusCode, r.Header.Get("Allow"))
	}
	_, r = rawHTTP(t, addr, "POST /ws/publish/news HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
	if r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("publish without a token: %d, WWW-Authenticate %q; want 401 with Bearer", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	_, r = rawHTTP(t, addr, "POST /ws/publish/news HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 1\r\n\r\nx")
	if want := `Bearer error="invalid_token"`; r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("publish with a wrong token: %d, WWW-Authenticate %q; want 401 with %s (RFC 6750 §3.1)", r.StatusCode, r.Header.Get("WWW-Authenticate"), want)
	}
	interim, r := rawHTTP(t, addr, "POST /ws/publish/news HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"+
		"Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
	if r.StatusCode != 413 || len(interim) != 0 {
		t.Fatalf("publish of 1 MB over a 4 KiB limit: %d after %q; want 413 and no 100 Continue", r.StatusCode, interim)
	}
	// A body within the limit still goes through, with the 100 Continue it asked for.
	interim, r = rawHTTP(t, addr, "POST /ws/publish/news HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"+
		"Content-Length: 2\r\nExpect: 100-continue\r\n\r\nhi")
	if r.StatusCode != 200 {
		t.Fatalf("publish within the limit: %d after %q", r.StatusCode, interim)
	}
	// A body declared JSON must be JSON (it would reach JSON subscribers as a string);
	// undeclared, or declared otherwise, it is text.
	for _, tc := range []struct{ ct, body, status string }{
		{"application/json", `{"a":`, "400"},
		{"Application/JSON; charset=utf-8", `not json`, "400"},
		{"application/merge-patch+json", `{`, "400"},
		{"application/json", `{"a":1}`, "200"},
		{"text/plain", `{"a":`, "200"},
		{"application/x-www-form-urlencoded", `{"a":`, "200"},
	} {
		_, r = rawHTTP(t, addr, "POST /ws/publish/news HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"+
			"Content-Type: "+tc.ct+"\r\nContent-Length: "+strconv.Itoa(len(tc.body))+"\r\n\r\n"+tc.body)
		if strconv.Itoa(r.StatusCode) != tc.status {
			t.Fatalf("publish of %q as %s: %d, want %s", tc.body, tc.ct, r.StatusCode, tc.status)
		}
	}
	// A chunked body over the limit is counted once it has arrived.
	_, r = rawHTTP(t, addr, "POST /ws/publish/news HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"+
		"Transfer-Encoding: chunked\r\n\r\n1001\r\n"+strings.Repeat("a", 0x1001)+"\r\n0\r\n\r\n")
	if r.StatusCode != 413 {
		t.Fatalf("chunked publish over the limit: %d, want 413", r.StatusCode)
	}
}

// TestUpgradeOtherThanWebSocketIgnored sends SSE and presence requests the way curl
// --http2 sends them to an http:// URL, with "Upgrade: h2c": the hub is HTTP/1.1
// only, so the field is ignored and the requests are served (before, they were taken
// for WebSocket handshakes and refused with 400).
func TestUpgradeOtherThanWebSocketIgnored(t *testing.T) {
	hd, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode})
	_, r := rawHTTP(t, addr, "GET /ws/presence HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"+
		"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("presence with Upgrade: h2c: %d %q, want 200 JSON", r.StatusCode, r.Header.Get("Content-Type"))
	}
	lines := curlStream(t, "http://"+addr+"/ws/sse/news", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c",
		"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA")
	expectLines(t, lines, ": subscribed")
	waitCount(t, hd.Hub(), "news", 1)
	// A WebSocket handshake is still one.
	wsDial(t, "ws://"+addr+"/ws/", nil)
}

// TestCalloutUnavailableRetryAfter checks that the 503 of an authorisation endpoint
// that fails carries Retry-After: 1, as docs/pubsub.md promises.
func TestCalloutUnavailableRetryAfter(t *testing.T) {
	as := startAuthServer(t)
	co := NewCallout(CalloutOptions{URL: as.url, Timeout: 500 * time.Millisecond, CacheTTL: time.Minute})
	_, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode, Callout: co})
	for _, req := range []string{
		"GET /ws/sse/news HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer boom\r\n\r\n",
		"POST /ws/publish/news HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer boom\r\nContent-Length: 1\r\n\r\nx",
	} {
		_, r := rawHTTP(t, addr, req)
		if r.StatusCode != 503 || r.Header.Get("Retry-After") != "1" {
			t.Fatalf("%q: %d, Retry-After %q; want 503 with Retry-After: 1", req, r.StatusCode, r.Header.Get("Retry-After"))
		}
	}
}

// TestInvalidTopicRefused checks that every HTTP entry point refuses a path naming no
// valid topic alike: 400 for a name over MaxTopicBytes or not UTF-8 (before, publishing
// to %E9 made a topic no JSON client could name, shown by presence as U+FFFD, and a
// 1025-byte name was 404 on publish but 200 on presence), 404 for no name at all.
func TestInvalidTopicRefused(t *testing.T) {
	long := strings.Repeat("a", MaxTopicBytes+1)
	for _, mode := range []Mode{ProtocolMode, PathMode} {
		h, addr := startHub(t, Options{}, HandlerOptions{Mode: mode, PublishToken: "tok"})
		sse := "/ws/sse/"
		if mode == PathMode {
			sse = "/ws/"
		}
		reqs := map[string]string{
			"publish":  "POST /ws/publish/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nContent-Length: 1\r\n\r\nx",
			"presence": "GET /ws/presence/%s HTTP/1.1\r\nHost: x\r\n\r\n",
			"sse":      "GET " + sse + "%s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
		}
		if mode == PathMode {
			reqs["websocket"] = "GET /ws/%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		}
		for kind, req := range reqs {
			for name, want := range map[string]int{"%E9": 400, "a%FF%FEb": 400, long: 400, "": 404, "ok": 0} {
				if want == 0 && kind == "websocket" {
					continue // a 101, which rawHTTP would take for an interim response
				}
				_, r := rawHTTP(t, addr, strings.Replace(req, "%s", name, 1))
				if want == 0 {
					if r.StatusCode >= 400 {
						t.Fatalf("mode %v, %s of a valid topic: %d", mode, kind, r.StatusCode)
					}
					continue
				}
				if r.StatusCode != want {
					t.Fatalf("mode %v, %s of topic %.20q: %d; want %d", mode, kind, name, r.StatusCode, want)
				}
			}
		}
		for _, p := range h.Hub().Presence() {
			if !ValidTopic(p.Topic) {
				t.Fatalf("mode %v: the hub holds the invalid topic %q", mode, p.Topic)
			}
		}
	}
}

// TestPublishContentTypeSetsOpcode: an HTTP publish reaches path-mode subscribers as
// a binary message when its Content-Type declares binary data, even if its bytes are
// UTF-8; as text when it declares text, JSON, XML or a form; and, without a
// Content-Type, as text when the bytes are UTF-8. Before, only the bytes counted, so
// a protobuf body that happened to be UTF-8 reached browsers as a string.
func TestPublishContentTypeSetsOpcode(t *testing.T) {
	hd, addr := startHub(t, Options{}, HandlerOptions{Mode: PathMode, PublishToken: "tok"})
	c := wsDial(t, "ws://"+addr+"/ws/room", nil)
	waitCount(t, hd.Hub(), "room", 1)
	for _, tc := range []struct {
		ct, body string
		op       int
	}{
		{"application/octet-stream", "hello", websocket.BinaryMessage},
		{"application/x-protobuf", "\x08\x01", websocket.BinaryMessage},
		{"image/png", "png", websocket.BinaryMessage},
		{"text/plain; charset=utf-8", "hello", websocket.TextMessage},
		{"application/json", `{"a":1}`, websocket.TextMessage},
		{"application/atom+xml", "<feed/>", websocket.TextMessage},
		{"application/x-www-form-urlencoded", "a=b", websocket.TextMessage},
		{"", "hello", websocket.TextMessage},
		{"", "\xff\xfe", websocket.BinaryMessage},
		{"text/plain", "\xff\xfe", websocket.BinaryMessage}, // not UTF-8: cannot be a text message
	} {
		ctField := ""
		if tc.ct != "" {
			ctField = "Content-Type: " + tc.ct + "\r\n"
		}
		_, r := rawHTTP(t, addr, "POST /ws/publish/room HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"+
			ctField+"Content-Length: "+strconv.Itoa(len(tc.body))+"\r\n\r\n"+tc.body)
		if r.StatusCode != 200 {
			t.Fatalf("publish as %q: %d", tc.ct, r.StatusCode)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		op, p, err := c.ReadMessage()
		if err != nil || op != tc.op || string(p) != tc.body {
			t.Fatalf("published as %q: opcode %d %q %v, want opcode %d", tc.ct, op, p, err, tc.op)
		}
	}
}

// TestPresenceNeedsTheGrant: with jwt, presence is what the token grants subscribing
// to. The protocol's presence command for a topic the token does not grant gets
// forbidden; HTTP presence needs a token (401 with WWW-Authenticate without one), answers
// 403 for a topic the token does not grant and lists only the granted topics, and
// publish_token sees every topic. Before, anyone could read every topic's name and
// subscriber count (per-user topics, who is online) without a token.
func TestPresenceNeedsTheGrant(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	auth, err := NewJWTAuth(secret)
	if err != nil {
		t.Fatal(err)
	}
	tok := token(t, jwt.SigningMethodHS256, secret, time.Hour, []string{"news"}, nil)
	hd, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode, Auth: auth, PublishToken: "tok"})
	for _, name := range []string{"news", "user.42"} {
		tp, err := hd.Hub().Acquire(name)
		if err != nil {
			t.Fatal(err)
		}
		defer hd.Hub().Release(tp)
	}
	ws := wsDial(t, "ws://"+addr+"/ws/", http.Header{"Authorization": {"Bearer " + tok}})
	send(t, ws, `{"type":"presence","id":1,"topic":"user.42"}`)
	if r := readReply(t, ws); r.Type != "error" || r.Code != ErrCodeForbidden {
		t.Fatalf("presence of an ungranted topic: %+v, want forbidden", r)
	}
	send(t, ws, `{"type":"presence","id":2,"topic":"news"}`)
	if r := readReply(t, ws); r.Type != "presence" {
		t.Fatalf("presence of a granted topic: %+v", r)
	}
	get := func(path, token string) (*http.Response, string) {
		t.Helper()
		req := "GET /ws/" + path + " HTTP/1.1\r\nHost: x\r\n"
		if token != "" {
			req += "Authorization: Bearer " + token + "\r\n"
		}
		_, resp := rawHTTP(t, addr, req+"\r\n")
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, p := range []string{"presence", "presence/news"} {
		if resp, _ := get(p, ""); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Fatalf("%s without a token: %d %v, want 401 with a challenge", p, resp.StatusCode, resp.Header)
		}
	}
	if resp, _ := get("presence/user.42", tok); resp.StatusCode != 403 {
		t.Fatalf("presence of an ungranted topic: %d, want 403", resp.StatusCode)
	}
	if resp, body := get("presence/news", tok); resp.StatusCode != 200 || !strings.Contains(body, `"news"`) {
		t.Fatalf("presence of a granted topic: %d %s", resp.StatusCode, body)
	}
	if resp, body := get("presence", tok); resp.StatusCode != 200 || !strings.Contains(body, `"news"`) || strings.Contains(body, "user.42") {
		t.Fatalf("presence list for the token: %d %s, want news only", resp.StatusCode, body)
	}
	if resp, body := get("presence", "tok"); resp.StatusCode != 200 || !strings.Contains(body, `"news"`) || !strings.Contains(body, "user.42") {
		t.Fatalf("presence list for publish_token: %d %s, want both topics", resp.StatusCode, body)
	}
}
