package pubsub

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gorilla/websocket"
)

// authServer is a real HTTP endpoint on 127.0.0.1 answering callouts by the bearer
// token: "all" 200 with an empty body, "news" 200 with a grant of news.* (and
// publish to news.local), "deny" 403, "slow" after 3 s, anything else 401. It
// records what it was sent.
type authServer struct {
	url  string
	gate chan struct{} // "Bearer gate" waits until it is closed
	mu   sync.Mutex
	seen []http.Header
}

func startAuthServer(t *testing.T) *authServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	as := &authServer{url: "http://" + ln.Addr().String() + "/auth", gate: make(chan struct{})}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		as.mu.Lock()
		as.seen = append(as.seen, r.Header.Clone())
		as.mu.Unlock()
		switch r.Header.Get("Authorization") {
		case "Bearer all":
		case "Bearer news":
			fmt.Fprint(w, `{"subscribe":["news.*"],"publish":["news.local"]}`)
		case "Bearer deny":
			w.WriteHeader(403)
		case "Bearer gate":
			<-as.gate
		case "Bearer slow":
			time.Sleep(3 * time.Second)
		case "Bearer junk":
			fmt.Fprint(w, `{"subscribe":"news"}`)
		case "Bearer boom":
			w.WriteHeader(500)
		default:
			w.WriteHeader(401)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return as
}

func (as *authServer) headers() []http.Header {
	as.mu.Lock()
	defer as.mu.Unlock()
	return append([]http.Header(nil), as.seen...)
}

// TestCallout authorises WebSocket, SSE and HTTP-publish requests through a real
// HTTP endpoint: each answer maps to its status (401, 403, 503 for a timeout, a 500
// or a bad body), a grant body limits topics, the client's credentials and URI are
// sent on, answers are cached per credentials (one call for many connections) and
// failures to ask are not.
func TestCallout(t *testing.T) {
	as := startAuthServer(t)
	co := NewCallout(CalloutOptions{URL: as.url, Timeout: 500 * time.Millisecond, CacheTTL: time.Minute})
	_, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode, Callout: co})
	_, paddr := startHub(t, Options{}, HandlerOptions{Mode: PathMode, Callout: co})
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	dial := func(url, tok string) (*websocket.Conn, int) {
		t.Helper()
		hdr := http.Header{}
		if tok != "" {
			hdr.Set("Authorization", "Bearer "+tok)
		}
		c, resp, err := d.Dial(url, hdr)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c, 101
		}
		if resp == nil {
			t.Fatalf("%s: %v", url, err)
		}
		return nil, resp.StatusCode
	}
	for _, tc := range []struct {
		tok  string
		want int
	}{{"", 401}, {"nope", 401}, {"deny", 403}, {"slow", 503}, {"boom", 503}, {"junk", 503}, {"all", 101}} {
		if _, got := dial("ws://"+addr+"/ws/", tc.tok); got != tc.want {
			t.Fatalf("token %q: status %d, want %d", tc.tok, got, tc.want)
		}
	}
	// Path mode: the grant decides the topic.
	if _, got := dial("ws://"+paddr+"/ws/news.a", "news"); got != 101 {
		t.Fatalf("granted topic: %d", got)
	}
	if _, got := dial("ws://"+paddr+"/ws/sport", "news"); got != 403 {
		t.Fatalf("ungranted topic: %d", got)
	}
	// Protocol mode: subscribe and publish checked against the grant.
	c, _ := dial("ws://"+addr+"/ws/?x=1", "news")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, tc := range []struct{ cmd, want string }{
		{`{"type":"subscribe","id":1,"topic":"news.a"}`, `"type":"subscribed"`},
		{`{"type":"subscribe","id":2,"topic":"sport"}`, `"code":"forbidden"`},
		{`{"type":"publish","id":3,"topic":"news.a","data":1}`, `"code":"forbidden"`},
	} {
		c.WriteMessage(websocket.TextMessage, []byte(tc.cmd))
		_, m, err := c.ReadMessage()
		if err != nil || !strings.Contains(string(m), tc.want) {
			t.Fatalf("%s: %s %v, want %s", tc.cmd, m, err, tc.want)
		}
	}
	// HTTP publish through the callout, with the token in the query.
	head, body := testkit.Curl(t, "-s", "-i", "--data-binary", "hi", "http://"+addr+"/ws/publish/news.local?token=news")
	if testkit.StatusOf(head) != "200" || !strings.Contains(body, `"offset":1`) {
		t.Fatalf("publish: %s %s", head, body)
	}
	if _, got := dial("ws://"+addr+"/ws/", ""); got != 401 {
		t.Fatalf("no token: %d", got)
	}
	head, _ = testkit.Curl(t, "-s", "-i", "--data-binary", "hi", "-H", "Authorization: Bearer news", "http://"+addr+"/ws/publish/sport")
	if testkit.StatusOf(head) != "403" {
		t.Fatalf("publish to an ungranted topic: %s", head)
	}
	// SSE.
	head, _ = testkit.Curl(t, "-s", "-i", "-H", "Accept: text/event-stream", "-H", "Authorization: Bearer deny", "http://"+addr+"/ws/sse/news.a")
	if testkit.StatusOf(head) != "403" {
		t.Fatalf("SSE refused: %s", head)
	}

	// What the endpoint saw: credentials, the original URI and method.
	var sawURI bool
	for _, h := range as.headers() {
		if h.Get("X-Original-URI") == "/ws/news.a" && h.Get("X-Original-Method") == "GET" {
			sawURI = true
		}
	}
	if !sawURI {
		t.Fatalf("X-Original-URI/Method not sent: %v", as.headers())
	}
	// Cache: 20 more connections with cached credentials cost no call; the failures
	// to ask (slow, boom, junk) were not cached and are asked again.
	before := co.Calls()
	for range 20 {
		if _, got := dial("ws://"+addr+"/ws/", "all"); got != 101 {
			t.Fatalf("cached: %d", got)
		}
	}
	if _, got := dial("ws://"+addr+"/ws/", "deny"); got != 403 {
		t.Fatalf("cached refusal: %d", got)
	}
	if co.Calls() != before {
		t.Fatalf("cached credentials made %d calls", co.Calls()-before)
	}
	if _, got := dial("ws://"+addr+"/ws/", "boom"); got != 503 || co.Calls() != before+1 {
		t.Fatalf("an unavailable answer was cached: %d, %d calls", got, co.Calls()-before)
	}
}

// TestCalloutShared: concurrent connections with the same uncached credentials share
// one call (the endpoint holds its answer until all of them wait on it), and the
// cache bound holds.
func TestCalloutShared(t *testing.T) {
	as := startAuthServer(t)
	co := NewCallout(CalloutOptions{URL: as.url, CacheTTL: time.Minute, CacheEntries: 4})
	_, addr := startHub(t, Options{}, HandlerOptions{Mode: ProtocolMode, Callout: co})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/", http.Header{"Authorization": {"Bearer gate"}})
			if err != nil {
				errs <- err
				return
			}
			c.Close()
		}()
	}
	testkit.WaitFor(t, "16 handshakes waiting on one callout", func() bool {
		co.mu.Lock()
		defer co.mu.Unlock()
		return len(co.inflight["Bearer gate\x00"]) == 16
	})
	close(as.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := co.Calls(); n != 1 {
		t.Fatalf("%d calls for 16 connections with the same credentials", n)
	}
	for i := range 10 {
		hdr := http.Header{"Cookie": {fmt.Sprintf("s=%d", i)}, "Authorization": {"Bearer all"}}
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/", hdr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	co.mu.Lock()
	n := len(co.cache)
	co.mu.Unlock()
	if n > 4 {
		t.Fatalf("cache holds %d entries, bound 4", n)
	}
}
