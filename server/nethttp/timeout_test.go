package nethttp

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
)

// startTimed serves h through AdaptOptions(o) on engine eng with HTTP/1.1 and h2c
// on one listener, under a server whose own ResponseTimeout is serverTimeout.
func startTimed(t *testing.T, eng string, h http.Handler, o Options, serverTimeout time.Duration) string {
	t.Helper()
	p := server.NewPool(16, 64)
	t.Cleanup(p.Close)
	a := AdaptOptions(h, p, o)
	s, err := server.New(server.Options{Handler: a, Workers: 2, Engine: eng, ResponseTimeout: serverTimeout})
	if err != nil && eng == engine.BackendIOURing {
		t.Skipf("no io_uring engine here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ListenDispatch("127.0.0.1:0", server.Dispatch{HTTP1: a, H2: s.NewHTTP2(server.HTTP2Options{})})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	shutdownAtCleanup(t, s)
	return l.Addr
}

// bothProtocols runs f with Go's HTTP/1.1 client and its h2c client.
func bothProtocols(t *testing.T, f func(t *testing.T, c *http.Client)) {
	t.Run("http1", func(t *testing.T) {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		f(t, &http.Client{Transport: tr, Timeout: 30 * time.Second})
	})
	t.Run("h2c", func(t *testing.T) { f(t, h2cClient(t)) })
}

// getAsync GETs url on its own goroutine and delivers "status body error" (or the
// request's error) on the returned channel.
func getAsync(c *http.Client, url string) <-chan string {
	got := make(chan string, 1)
	go func() {
		resp, err := c.Get(url)
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- fmt.Sprintf("%d %s %v", resp.StatusCode, b, err)
	}()
	return got
}

// TestLongPollAndEventStreamOutliveResponseTimeout: as on net/http's server, which
// has no write timeout unless one is set, a long poll that answers after several
// of the server's response timeouts and an event stream that flushes an event at
// a time for longer than that both reach the client whole; neither is cut with a
// 504 or a closed connection. Before the fix the long poll got 504 and the stream
// could not outlive a silent gap of the server's ResponseTimeout.
func TestLongPollAndEventStreamOutliveResponseTimeout(t *testing.T) {
	const serverTimeout = 150 * time.Millisecond
	onEngines(t, func(t *testing.T, eng string) {
		release := make(chan struct{})
		mux := http.NewServeMux()
		mux.HandleFunc("/poll", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
				io.WriteString(w, "news")
			case <-r.Context().Done():
			}
		})
		mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			for i := range 4 {
				// Each gap is longer than the server's response timeout.
				select {
				case <-time.After(2 * serverTimeout):
				case <-r.Context().Done():
					return
				}
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
			}
		})
		addr := startTimed(t, eng, mux, Options{}, serverTimeout)
		bothProtocols(t, func(t *testing.T, c *http.Client) {
			got := getAsync(c, "http://"+addr+"/poll")
			select {
			case s := <-got:
				t.Fatalf("the long poll ended before it was released: %s", s)
			case <-time.After(5 * serverTimeout):
			}
			release <- struct{}{}
			if s := <-got; s != "200 news <nil>" {
				t.Fatalf("long poll: %s, want 200 news", s)
			}

			resp, err := c.Get("http://" + addr + "/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if want := "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n"; err != nil || string(b) != want {
				t.Fatalf("event stream: %q, %v; want %q", b, err, want)
			}
		})
	})
}

// TestAdapterResponseTimeoutBoundsOnlyStuckHandlers: with Options.ResponseTimeout a
// handler that keeps flushing runs for many periods and completes, and so does one
// that lifted its write deadline with http.ResponseController (as SSE handlers lift
// net/http's WriteTimeout), while a stuck one is bounded: 504 when it has sent nothing (its context cancelled, its later
// writes failing), an aborted connection or a reset stream once its head is out.
func TestAdapterResponseTimeoutBoundsOnlyStuckHandlers(t *testing.T) {
	const d = 150 * time.Millisecond
	onEngines(t, func(t *testing.T, eng string) {
		lateWrite := make(chan error, 4)
		mux := http.NewServeMux()
		mux.HandleFunc("/flushing", func(w http.ResponseWriter, r *http.Request) {
			for end := time.Now().Add(6 * d); time.Now().Before(end); {
				io.WriteString(w, ".")
				w.(http.Flusher).Flush()
				time.Sleep(d / 5)
			}
			io.WriteString(w, "done")
		})
		mux.HandleFunc("/stuck", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			_, err := io.WriteString(w, strings.Repeat("x", 8192))
			lateWrite <- err
		})
		mux.HandleFunc("/lifted", func(w http.ResponseWriter, r *http.Request) {
			// As an SSE handler lifts net/http's WriteTimeout.
			http.NewResponseController(w).SetWriteDeadline(time.Time{})
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			select {
			case <-time.After(4 * d):
				io.WriteString(w, "still here")
			case <-r.Context().Done():
			}
		})
		mux.HandleFunc("/stuck-after-head", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		addr := startTimed(t, eng, mux, Options{ResponseTimeout: d}, 0)
		bothProtocols(t, func(t *testing.T, c *http.Client) {
			resp, err := c.Get("http://" + addr + "/flushing")
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !strings.HasSuffix(string(b), "done") {
				t.Fatalf("flushing handler: %d %q %v", resp.StatusCode, b, err)
			}

			start := time.Now()
			resp, err = c.Get("http://" + addr + "/stuck")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 504 {
				t.Fatalf("stuck handler: status %d, want 504", resp.StatusCode)
			}
			if el := time.Since(start); el > 20*d {
				t.Fatalf("stuck handler answered after %v, bound %v", el, d)
			}
			select {
			case err := <-lateWrite:
				if err == nil {
					t.Fatal("a write after the 504 succeeded")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the stuck handler's context was not cancelled")
			}

			resp, err = c.Get("http://" + addr + "/lifted")
			if err != nil {
				t.Fatal(err)
			}
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "still here" {
				t.Fatalf("handler that lifted its write deadline: %q, %v; want its whole answer", b, err)
			}

			resp, err = c.Get("http://" + addr + "/stuck-after-head")
			if err != nil {
				t.Fatal(err)
			}
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil || string(b) != "partial" {
				t.Fatalf("stuck after its head: body %q, error %v; want the partial body and an error", b, err)
			}
		})
	})
}

// TestAdapterResponseTimeoutSparesHandlerReadingSlowBody: a handler blocked in a
// body Read waits for the client, not for itself, so the response timeout does not
// cut it while the client keeps sending (the body timeout bounds the client).
func TestAdapterResponseTimeoutSparesHandlerReadingSlowBody(t *testing.T) {
	const d = 150 * time.Millisecond
	addr := startTimed(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %v", len(b), err)
	}), Options{ResponseTimeout: d}, 0)
	c := testkit.Dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
	for range 4 {
		time.Sleep(d / 2) // a slow client: the whole body takes longer than d
		io.WriteString(c, "a")
	}
	resp := testkit.ReadResponse(t, bufio.NewReader(c), "POST")
	if got := testkit.Body(t, resp); resp.StatusCode != 200 || got != "4 <nil>" {
		t.Fatalf("%d %q, want 200 %q", resp.StatusCode, got, "4 <nil>")
	}
}
