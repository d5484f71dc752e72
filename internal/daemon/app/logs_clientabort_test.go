package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/net/http2"
)

// TestProxyClientAbort: a client that leaves a proxied request while the origin is
// still working on it. The access log and gale_http_requests_total record 499 when
// nothing of the response was sent (as nginx does), the status sent when the head
// had gone out; and the origin's request is aborted (its connection closed, as
// nginx's proxy_ignore_client_abort off does) instead of being answered into a
// connection nobody reads, which the pool could not reuse anyway. HTTP/1.1 clients
// leave with a FIN or a reset, HTTP/2 ones with RST_STREAM or by closing their
// connection; before the origin's head, or after part of its body. On epoll and
// io_uring.
func TestProxyClientAbort(t *testing.T) { onLinuxEngines(t, testProxyClientAbort) }

// originWait is how long the test origin works on a request unless gale aborts
// it first; an abort is seen well before.
const originWait = 3 * time.Second

func testProxyClientAbort(t *testing.T, eng string) {
	var mu sync.Mutex
	aborted := map[string]bool{} // variant -> the origin saw its request cancelled
	var wg sync.WaitGroup
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		v := r.URL.Query().Get("v")
		wait := originWait
		if r.URL.Path == "/quick" {
			wait = 300 * time.Millisecond
		}
		if r.URL.Path == "/partial" {
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(200)
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
			mu.Lock()
			aborted[v] = true
			mu.Unlock()
		case <-time.After(wait):
			if r.URL.Path == "/partial" {
				w.Write(make([]byte, 99000))
			} else {
				io.WriteString(w, "late")
			}
		}
	}))
	defer origin.Close()
	logPath := filepath.Join(t.TempDir(), "access.log")
	ca, cert := serverCert(t)
	a, _ := runApp(t, fmt.Sprintf(`
engine: %s
workers: 1
admin:
  listen: 127.0.0.1:0
servers:
  - name: web
    listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    access_log: { path: %s, format: json }
    routes:
      - name: keep
        match: { path: /keep/ }
        proxy: { upstreams: ["%[3]s"], strip_prefix: /keep, ignore_client_half_close: true }
      - name: up
        proxy: { upstreams: ["%[3]s"] }
  - name: secure
    listen: ["127.0.0.2:0"]
    tls: { certificates: [{ cert: %[4]s, key: %[5]s }] }
    access_log: { path: %[2]s, format: json }
    routes:
      - name: up
        proxy: { upstreams: ["%[3]s"] }
`, eng, logPath, strings.TrimPrefix(origin.URL, "http://"), cert.Cert, cert.Key))
	addr, tlsAddr := a.Addrs()["127.0.0.1:0"], a.Addrs()["127.0.0.2:0"]
	if b := a.srv.Engine().Backend(); b != eng {
		shutdownNow(t, a)
		t.Skipf("engine %q runs as %q", eng, b)
	}

	// h1 sends a request on a raw connection and leaves: after 200 ms, or once
	// the head and 1000 body bytes arrived (afterBody), with a FIN or a reset.
	h1 := func(v string, afterBody, reset bool) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		path := "/slow"
		if afterBody {
			path = "/partial"
		}
		fmt.Fprintf(c, "GET %s?v=%s HTTP/1.1\r\nHost: x\r\n\r\n", path, v)
		if afterBody {
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%s: %v", v, err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
				t.Fatalf("%s: %v", v, err)
			}
		} else {
			time.Sleep(200 * time.Millisecond) // the origin is working on it
		}
		if reset {
			c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}
	// h1TLS is h1 before the head over TLS: the client leaves with close_notify
	// and its FIN, or with a bare FIN.
	h1TLS := func(v string, notify bool) {
		raw, err := net.Dial("tcp", tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		c := tls.Client(raw, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /slow?v=%s HTTP/1.1\r\nHost: x\r\n\r\n", v)
		time.Sleep(200 * time.Millisecond) // the origin is working on it
		if notify {
			c.Close()
		} else {
			raw.(*net.TCPConn).CloseWrite()
		}
	}
	// h2 sends a request on an h2c connection of its own and leaves: the stream
	// cancelled (RST_STREAM) or the connection closed.
	h2 := func(v string, afterBody, closeConn bool) {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		conns := make(chan net.Conn, 1) // the transport's one connection
		tr := &http.Transport{Protocols: &p, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := net.Dial(network, a)
			if err == nil {
				conns <- c
			}
			return c, err
		}}
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		path := "/slow"
		if afterBody {
			path = "/partial"
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+path+"?v="+v, nil)
		leave := func() {
			if closeConn {
				(<-conns).Close()
			} else {
				cancel()
			}
		}
		if !afterBody {
			time.AfterFunc(200*time.Millisecond, leave)
			if resp, err := tr.RoundTrip(req); err == nil {
				resp.Body.Close()
				t.Errorf("%s: got a response %d after leaving", v, resp.StatusCode)
			}
			return
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		leave()
		resp.Body.Close()
	}
	// h2fin sends a request on a raw h2c connection and half-closes it (a FIN)
	// while the origin works: the stream is reset with CANCEL, the code for a
	// stream nobody needs any more, not INTERNAL_ERROR.
	h2fin := func(v string) {
		c, fr := testkit.H2Open(t, addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := testkit.H2Get(fr, 1, "/slow?v="+v); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the origin is working on it
		c.CloseWrite()
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Errorf("%s: %v before RST_STREAM", v, err)
				return
			}
			switch f := f.(type) {
			case *http2.RSTStreamFrame:
				if f.ErrCode != http2.ErrCodeCancel {
					t.Errorf("%s: RST_STREAM %v; want CANCEL", v, f.ErrCode)
				}
				return
			case *http2.HeadersFrame, *http2.DataFrame:
				t.Errorf("%s: got %T after leaving", v, f)
				return
			}
		}
	}

	variants := []struct {
		name   string
		run    func(v string)
		status int
	}{
		{"h1-fin-before-head", func(v string) { h1(v, false, false) }, 499},
		{"h1-reset-before-head", func(v string) { h1(v, false, true) }, 499},
		{"h1-fin-after-body", func(v string) { h1(v, true, false) }, 200},
		{"h1-reset-after-body", func(v string) { h1(v, true, true) }, 200},
		{"h1-tls-closenotify-before-head", func(v string) { h1TLS(v, true) }, 499},
		{"h1-tls-fin-before-head", func(v string) { h1TLS(v, false) }, 499},
		{"h2-rststream-before-head", func(v string) { h2(v, false, false) }, 499},
		{"h2-close-before-head", func(v string) { h2(v, false, true) }, 499},
		{"h2-fin-before-head", h2fin, 499},
		{"h2-rststream-after-body", func(v string) { h2(v, true, false) }, 200},
		{"h2-close-after-body", func(v string) { h2(v, true, true) }, 200},
	}
	start := time.Now()
	for _, v := range variants {
		v.run(v.name)
	}
	// With ignore_client_half_close a client that half-closes after its request
	// still gets the answer.
	func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /keep/quick?v=kept HTTP/1.1\r\nHost: x\r\n\r\n")
		c.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("kept: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "late" || err != nil {
			t.Errorf("kept: %d %q %v; want 200 late", resp.StatusCode, b, err)
		}
	}()
	// Every origin request ends: aborted by gale, or answered after originWait.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2*originWait + 10*time.Second):
		t.Fatal("origin requests still running")
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	want4xx, want2xx := 0.0, 0.0
	for _, v := range variants {
		if strings.HasPrefix(v.name, "h1-tls-") {
			continue // counted for the other server
		}
		if v.status == 499 {
			want4xx++
		} else {
			want2xx++
		}
	}
	var text string
	deadline := time.Now().Add(10 * time.Second)
	for {
		text = scrape(t, hc, a.AdminAddr())
		got4 := metricValue(t, text, `gale_http_requests_total{code_class="4xx",route="up",server="web"}`)
		got2 := metricValue(t, text, `gale_http_requests_total{code_class="2xx",route="up",server="web"}`)
		if got4+got2 >= want4xx+want2xx || time.Now().After(deadline) {
			if got4 != want4xx || got2 != want2xx {
				t.Errorf("gale_http_requests_total: 4xx %v, 2xx %v; want %v and %v", got4, got2, want4xx, want2xx)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	shutdownNow(t, a)
	statuses := map[string]int{}
	for _, line := range readLines(t, logPath) {
		var e struct {
			Path   string
			Status int
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if _, q, ok := strings.Cut(e.Path, "?v="); ok {
			statuses[q] = e.Status
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if statuses["kept"] != 200 || aborted["kept"] {
		t.Errorf("kept: logged %d, aborted %v; want 200, not aborted", statuses["kept"], aborted["kept"])
	}
	for _, v := range variants {
		if got := statuses[v.name]; got != v.status {
			t.Errorf("%s: logged status %d, want %d", v.name, got, v.status)
		}
		if !aborted[v.name] {
			t.Errorf("%s: the origin's request was not aborted when the client left", v.name)
		}
	}
	if el := time.Since(start); el > originWait*time.Duration(len(variants))/2 {
		t.Logf("the variants took %v", el)
	}
}
