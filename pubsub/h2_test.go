package pubsub

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
)

// startH2Hub serves hd with HTTP/1.1 and h2c (prior knowledge) on one listener, on
// two loops, and returns the address.
func startH2Hub(t *testing.T, hd *Handler) string {
	t.Helper()
	s, err := server.New(server.Options{Handler: hd, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ListenDispatch("127.0.0.1:0", server.Dispatch{HTTP1: hd, H2: s.NewHTTP2(server.HTTP2Options{})})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return l.Addr
}

// h2Stream opens an SSE subscription over HTTP/2 and returns its lines; cancel resets
// the stream.
func h2Stream(t *testing.T, cl *http.Client, url string, hdr ...string) (lines <-chan string, cancel func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("SSE over HTTP/2: %s %d %q", resp.Proto, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch, cancel
}

// TestSSEOverHTTP2 subscribes with SSE over h2c streams (before, the route answered
// every HTTP/2 request 505): events with ids and multi-line data, Last-Event-ID
// recovery and recovery-failed, as over HTTP/1.1; publishing and presence over HTTP/2
// too, and 405 with Allow. A stream the client resets ends its subscription.
func TestSSEOverHTTP2(t *testing.T) {
	hd, err := NewHandler(New(Options{Loops: 2, HistorySize: 16}), HandlerOptions{Prefix: "/ws/", Mode: ProtocolMode, PublishToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	addr := startH2Hub(t, hd)
	cl := testkit.H2CClient(t)
	base := "http://" + addr + "/ws/"
	publish := func(body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"publish/news", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("publish over HTTP/2: %s %d %s", resp.Proto, resp.StatusCode, b)
		}
	}
	lines, cancel := h2Stream(t, cl, base+"sse/news")
	expectLines(t, lines, ": subscribed")
	waitCount(t, hd.Hub(), "news", 1)
	publish("first")
	publish("two\nlines")
	epoch, _ := hd.Hub().Lookup("news").Epoch()
	expectLines(t, lines, "id: "+epoch+"-1", "data: first", "", "id: "+epoch+"-2", "data: two", "data: lines", "")

	again, cancelAgain := h2Stream(t, cl, base+"sse/news", "Last-Event-ID: "+epoch+"-1")
	expectLines(t, again, "id: "+epoch+"-2", "data: two", "data: lines", "")
	stale, cancelStale := h2Stream(t, cl, base+"sse/news", "Last-Event-ID: 0000-5")
	expectLines(t, stale, "event: recovery-failed", "data: "+epoch+"-2")
	waitCount(t, hd.Hub(), "news", 3)
	publish("third")
	for _, ls := range []<-chan string{lines, again, stale} {
		expectLines(t, ls, "id: "+epoch+"-3", "data: third")
	}

	resp, err := cl.Get(base + "presence/news")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || !strings.Contains(string(b), `"subscribers":3`) {
		t.Fatalf("presence over HTTP/2: %s %d %s", resp.Proto, resp.StatusCode, b)
	}
	req, _ := http.NewRequest("PUT", base+"publish/news", strings.NewReader("x"))
	resp, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, POST" {
		t.Fatalf("PUT over HTTP/2: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// Resetting the streams (RST_STREAM CANCEL) ends the subscriptions.
	cancel()
	cancelAgain()
	cancelStale()
	waitCount(t, hd.Hub(), "news", 0)
}

// TestSSEOverHTTP2SlowClose: under the close policy a stream whose subscriber does
// not read is reset (the HTTP/2 counterpart of cutting an SSE response) and its
// subscription ends.
func TestSSEOverHTTP2SlowClose(t *testing.T) {
	hd, err := NewHandler(New(Options{Loops: 2, Queue: 4, SocketBytes: 4 << 10, Policy: Close}),
		HandlerOptions{Prefix: "/ws/", Mode: PathMode})
	if err != nil {
		t.Fatal(err)
	}
	addr := startH2Hub(t, hd)
	cl := testkit.H2CClient(t)
	// The slow one: opened and never read (its stream window fills, then the queue).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/ws/room", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitCount(t, hd.Hub(), "room", 1)
	topic := hd.Hub().Lookup("room")
	big := strings.Repeat("x", 8<<10)
	for i := 0; hd.Hub().Stats().Closed == 0; i++ {
		if i == 2000 {
			t.Fatal("the slow stream was never closed")
		}
		topic.Publish(1, []byte(big), nil)
	}
	waitCount(t, hd.Hub(), "room", 0)
	// Reading it now ends in an error (the reset), not a clean end of the stream.
	if _, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Fatal("the slow stream ended cleanly, want a reset")
	}
}

// TestSSEOverHTTP2ClientHalfClose: an HTTP/2 client that closes its side of the
// connection (a TCP FIN, with no RST_STREAM or GOAWAY first, as a killed curl
// leaves it) ends its SSE subscription and the connection at once, not when the
// next heartbeat (25 s) finds the socket gone.
func TestSSEOverHTTP2ClientHalfClose(t *testing.T) {
	hd, err := NewHandler(New(Options{Loops: 2}), HandlerOptions{Prefix: "/ws/", Mode: PathMode})
	if err != nil {
		t.Fatal(err)
	}
	addr := startH2Hub(t, hd)
	nc, fr := testkit.H2Open(t, addr)
	if err := testkit.H2Get(fr, 1, "/ws/room", "accept", "text/event-stream"); err != nil {
		t.Fatal(err)
	}
	waitCount(t, hd.Hub(), "room", 1)
	start := time.Now()
	if err := nc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, hd.Hub(), "room", 0)
	for {
		if _, err := fr.ReadFrame(); err != nil {
			if err != io.EOF {
				t.Fatalf("after the half-close: %v, want the server's end of stream", err)
			}
			break
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the subscription and connection ended %v after the half-close", d)
	}
}
