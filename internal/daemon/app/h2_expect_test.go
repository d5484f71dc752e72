package app

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestH2ExpectContinue: an HTTP/2 request with "expect: 100-continue" gets its 100
// (Continue) when the route asks for the body, as an HTTP/1.1 one does: through a
// proxy route once the origin answered 100, so Go's client, which waits for the 100
// up to ExpectContinueTimeout (10 s here), sends the body at once; it used to wait
// the whole timeout. An origin that refuses without reading gets no body, and the
// client its final status without a 100. On epoll and io_uring.
func TestH2ExpectContinue(t *testing.T) { onLinuxEngines(t, testH2ExpectContinue) }

func testH2ExpectContinue(t *testing.T, eng string) {
	origin := startGoOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(403) // net/http sends no 100 for a body never read
			return
		}
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "got "+string(b))
	}))
	addr := startH2cProxy(t, eng, origin, "")
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p, ExpectContinueTimeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	post := func(path string) (status int, body string, got100 bool, took time.Duration) {
		t.Helper()
		var seen atomic.Bool
		trace := &httptrace.ClientTrace{Got100Continue: func() { seen.Store(true) }}
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader("hello"))
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		req.Header.Set("Expect", "100-continue")
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), seen.Load(), time.Since(start)
	}
	status, body, got100, took := post("/echo")
	if status != 200 || body != "got hello" || !got100 || took > 5*time.Second {
		t.Fatalf("echo: %d %q, 100 seen %v, after %v; want 200, the body and a 100 at once", status, body, got100, took)
	}
	status, _, got100, took = post("/refuse")
	if status != 403 || got100 || took > 5*time.Second {
		t.Fatalf("refuse: %d, 100 seen %v, after %v; want 403 without a 100", status, got100, took)
	}
}
