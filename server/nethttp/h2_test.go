package nethttp

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/go-chi/chi/v5"
)

// startDispatch serves h through the adapter with HTTP/1.1 and h2c (prior
// knowledge) on one listener and returns its address.
func startDispatch(t *testing.T, h http.Handler) string {
	t.Helper()
	return startOn(t, "", h)
}

// h2cClient is Go's HTTP/2 client speaking h2c by prior knowledge.
func h2cClient(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestChiRouterBothProtocols: an unmodified chi router answers HTTP/1.1 and h2c on
// the same listener; over HTTP/2 the request says so, a 3 MB POST comes back whole
// (both bodies past every window), a flushed line arrives before the handler writes
// the next, and trailers reach the client.
func TestChiRouterBothProtocols(t *testing.T) {
	release := make(chan struct{}, 1)
	r := chi.NewRouter()
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, hijacker := w.(http.Hijacker)
		fmt.Fprintf(w, "%s %d id=%s host=%s hijacker=%v", r.Proto, r.ProtoMajor, chi.URLParam(r, "id"), r.Host, hijacker)
	})
	r.Post("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), r.Body); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
	})
	r.Get("/stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second\n")
	})
	addr := startDispatch(t, r)
	h2 := h2cClient(t)
	for _, tc := range []struct {
		c     *http.Client
		proto string
		want  string
	}{
		{http.DefaultClient, "HTTP/1.1", "HTTP/1.1 1 id=42 host=" + addr + " hijacker=true"},
		{h2, "HTTP/2.0", "HTTP/2.0 2 id=42 host=" + addr + " hijacker=false"},
	} {
		resp, err := tc.c.Get("http://" + addr + "/users/42")
		if err != nil {
			t.Fatal(err)
		}
		if got := testkit.Body(t, resp); resp.Proto != tc.proto || got != tc.want {
			t.Fatalf("%s: got %s %q, want %q", tc.proto, resp.Proto, got, tc.want)
		}

		big := strings.Repeat("0123456789", 300000)
		resp, err = tc.c.Post("http://"+addr+"/echo", "text/plain", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		got := testkit.Body(t, resp)
		sum := fmt.Sprintf("%x", sha256.Sum256([]byte(big)))
		if got != big || resp.Trailer.Get("X-Sum") != sum {
			t.Fatalf("%s echo: %d bytes back of %d, trailer %q", tc.proto, len(got), len(big), resp.Trailer.Get("X-Sum"))
		}

		resp, err = tc.c.Get("http://" + addr + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
			t.Fatalf("%s flushed line: %q %v", tc.proto, line, err)
		}
		release <- struct{}{}
		if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
			t.Fatalf("%s rest %q", tc.proto, rest)
		}
		resp.Body.Close()
	}
}

// TestH2ContextCanceledOnStreamReset: a client that cancels its request resets the
// stream (RST_STREAM CANCEL), and the handler's request context is cancelled while
// the connection stays up for the next request.
func TestH2ContextCanceledOnStreamReset(t *testing.T) {
	started := make(chan struct{}, 1)
	var canceled atomic.Bool
	done := make(chan struct{}, 1)
	addr := startDispatch(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			io.WriteString(w, "ok")
			return
		}
		io.WriteString(w, "head")
		w.(http.Flusher).Flush()
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			canceled.Store(true)
		case <-time.After(10 * time.Second):
		}
		done <- struct{}{}
	}))
	c := h2cClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/wait", nil)
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", err, resp)
	}
	<-started
	cancel()
	resp.Body.Close()
	<-done
	if !canceled.Load() {
		t.Fatal("the request context was not cancelled by the stream reset")
	}
	resp, err = c.Get("http://" + addr + "/ok")
	if err != nil || testkit.Body(t, resp) != "ok" {
		t.Fatalf("next request on the connection: %v", err)
	}
}

// TestH2HijackTrailersAbort: over HTTP/2, ResponseController.Hijack reports
// http.ErrNotSupported, request trailers arrive after the body, and a handler
// panicking with http.ErrAbortHandler resets only its stream.
func TestH2HijackTrailersAbort(t *testing.T) {
	addr := startDispatch(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hijack":
			_, _, err := http.NewResponseController(w).Hijack()
			fmt.Fprintf(w, "%v", errors.Is(err, http.ErrNotSupported))
		case "/trailers":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s cl=%d", b, r.Trailer.Get("X-T"), r.ContentLength)
		case "/abort":
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
	}))
	c := h2cClient(t)
	resp, err := c.Get("http://" + addr + "/hijack")
	if err != nil || testkit.Body(t, resp) != "true" {
		t.Fatalf("hijack over h2: %v", err)
	}
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, "body")
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://"+addr+"/trailers", pr)
	req.Trailer = http.Header{"X-T": nil}
	req.Trailer.Set("X-T", "tv")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := testkit.Body(t, resp); got != "body tv cl=-1" {
		t.Fatalf("request trailers over h2: %q", got)
	}
	resp, err = c.Get("http://" + addr + "/abort")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("an aborted handler's response ended cleanly")
	}
	resp, err = c.Get("http://" + addr + "/hijack")
	if err != nil || testkit.Body(t, resp) != "true" {
		t.Fatalf("after the abort: %v", err)
	}
}
