package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gorilla/websocket"
)

// startPubSubTLS serves both pub/sub modes on a tls: server with h2 enabled and
// returns its address and a client configuration trusting it.
func startPubSubTLS(t *testing.T) (string, *tls.Config) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.Issue("ps", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startApp(t, fmt.Sprintf(`
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2]
    tls:
      certificates: [{ cert: %s, key: %s }]
    routes:
      - match: { path: /fan/ }
        pubsub: { topic: path, compression: true, publish_token: tok }
      - match: { path: /hub/ }
        pubsub: { compression: true, publish_token: tok }
`, f.Cert, f.Key))
	return addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
}

// TestPubSubOverTLS: messages reach wss:// subscribers of both modes encrypted, with
// and without permessage-deflate, and SSE subscribers over HTTP/1.1 under TLS and
// over h2. Before, the hub wrote its frames on the socket beneath the TLS layer (they
// crossed the wire in cleartext inside the TLS stream and the client failed the
// connection at the first one), SSE under TLS was answered 500 (the connection
// cannot be let go) and over h2 505. With sse false only the WebSockets are tried.
func TestPubSubOverTLS(t *testing.T) {
	for _, withSSE := range []bool{false, true} {
		t.Run(fmt.Sprintf("sse=%v", withSSE), func(t *testing.T) { testPubSubOverTLS(t, withSSE) })
	}
}

func testPubSubOverTLS(t *testing.T, withSSE bool) {
	addr, tc := startPubSubTLS(t)
	dial := func(path string, compress bool) *websocket.Conn {
		t.Helper()
		d := websocket.Dialer{TLSClientConfig: tc.Clone(), EnableCompression: compress, HandshakeTimeout: 5 * time.Second}
		c, _, err := d.Dial("wss://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	// Both SSE transports, subscribed first.
	// Each client gets its own tls.Config: net/http adds "h2" to the one it is given.
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: tc.Clone(), ForceAttemptHTTP2: false,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: tc.Clone(), ForceAttemptHTTP2: true}}
	sse := func(cl *http.Client, proto int) *bufio.Scanner {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+addr+"/hub/sse/news", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != 200 || resp.ProtoMajor != proto {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("SSE over HTTP/%d under TLS: %s %d %s", proto, resp.Proto, resp.StatusCode, b)
		}
		sc := bufio.NewScanner(resp.Body)
		if !sc.Scan() || sc.Text() != ": subscribed" || !sc.Scan() || !strings.HasPrefix(sc.Text(), "id: ") || !sc.Scan() || sc.Text() != "" {
			t.Fatalf("SSE over HTTP/%d: %q, want the subscribed comment and the id of the position", proto, sc.Text())
		}
		return sc
	}
	streams := map[int]*bufio.Scanner{}
	if withSSE {
		streams[1], streams[2] = sse(h1, 1), sse(h2, 2)
	}

	long := strings.Repeat("compressible ", 40) // over the 64 bytes compression starts at
	for _, compress := range []bool{false, true} {
		// Path mode: what one client sends reaches the other.
		a, b := dial("/fan/room", compress), dial("/fan/room", compress)
		for _, m := range []string{"short", long} {
			if err := a.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				t.Fatal(err)
			}
			if _, got, err := b.ReadMessage(); err != nil || string(got) != m {
				t.Fatalf("path mode, compression %v: %q %v, want %q", compress, got, err, m)
			}
		}
		// Protocol mode: a subscription gets the envelope.
		s := dial("/hub/", compress)
		s.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","topic":"news"}`))
		if _, got, err := s.ReadMessage(); err != nil || !strings.Contains(string(got), `"subscribed"`) {
			t.Fatalf("subscribe: %s %v", got, err)
		}
		p := dial("/hub/", false)
		p.WriteMessage(websocket.TextMessage, []byte(`{"type":"publish","topic":"news","data":"`+long+`"}`))
		if _, got, err := s.ReadMessage(); err != nil || !strings.Contains(string(got), long) {
			t.Fatalf("protocol mode, compression %v: %.80s %v", compress, got, err)
		}
		for proto, sc := range streams {
			var data string
			for sc.Scan() && sc.Text() != "" {
				if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					data = d
				}
			}
			if data != `"`+long+`"` && data != long {
				t.Fatalf("SSE over HTTP/%d under TLS: data %.80q", proto, data)
			}
		}
	}
}
