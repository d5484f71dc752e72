package nethttp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestResponseControllerAsNetHTTP: http.ResponseController's deadlines and full
// duplex work through the adapter as on net/http's server, instead of
// http.ErrNotSupported: a read deadline ends a body read that waits too long, a
// passed write deadline fails the handler's writes and aborts the connection
// rather than leaving the client waiting, and a full-duplex handler echoes a body
// that the client sends only after the response started.
func TestResponseControllerAsNetHTTP(t *testing.T) {
	werr := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/calls", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		fmt.Fprintf(w, "%v %v %v %v", rc.SetReadDeadline(time.Now().Add(time.Minute)), rc.SetWriteDeadline(time.Time{}), rc.EnableFullDuplex(), rc.Flush())
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "deadline=%v", errors.Is(err, os.ErrDeadlineExceeded))
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.SetWriteDeadline(time.Now().Add(-time.Second))
		_, err := w.Write([]byte(strings.Repeat("x", 64<<10)))
		if ferr := rc.Flush(); err == nil {
			err = ferr
		}
		werr <- err
	})
	mux.HandleFunc("/duplex", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			t.Error(err)
		}
		io.WriteString(w, "ready\n")
		rc.Flush()
		b := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			t.Error(err)
		}
		w.Write(b)
	})
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, mux)
		h2 := h2cClient(t)
		_, body := rawGet(t, addr, "GET", "/calls")
		resp, err := h2.Get("http://" + addr + "/calls")
		if err != nil {
			t.Fatal(err)
		}
		for proto, body := range map[string]string{"HTTP/1.1": body, "HTTP/2": testkit.Body(t, resp)} {
			if body != "<nil> <nil> <nil> <nil>" {
				t.Errorf("%s: ResponseController calls returned %q", proto, body)
			}
		}

		c := testkit.Dial(t, addr)
		io.WriteString(c, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
		resp = testkit.ReadResponse(t, bufio.NewReader(c), "POST")
		if body := testkit.Body(t, resp); body != "deadline=true" {
			t.Errorf("read past the read deadline: %q", body)
		}

		c = testkit.Dial(t, addr)
		io.WriteString(c, "GET /write HTTP/1.1\r\nHost: x\r\n\r\n")
		if err := <-werr; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write past the write deadline: %v", err)
		}
		if _, err := io.ReadAll(c); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the client still waits for a response whose write deadline passed")
		}

		c = testkit.Dial(t, addr)
		io.WriteString(c, "POST /duplex HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
		br := bufio.NewReader(c)
		for line := ""; line != "ready\n"; {
			var err error
			if line, err = br.ReadString('\n'); err != nil {
				t.Fatalf("waiting for the response to start: %v", err)
			}
		}
		io.WriteString(c, "hello")
		rest, _ := io.ReadAll(br)
		if !strings.Contains(string(rest), "hello") {
			t.Errorf("full duplex echo: %q", rest)
		}
	})
}

// TestCloseNotifyWhenClientGoes: the ResponseWriter is an http.CloseNotifier, as
// net/http's own is on both protocols (frameworks assert it to stream), and its
// channel fires when the client goes away.
func TestCloseNotifyWhenClientGoes(t *testing.T) {
	started, notified := make(chan struct{}, 1), make(chan bool, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn, ok := w.(interface{ CloseNotify() <-chan bool })
		if !ok {
			notified <- false
			return
		}
		ch := cn.CloseNotify()
		w.(http.Flusher).Flush()
		started <- struct{}{}
		select {
		case v := <-ch:
			notified <- v
		case <-time.After(testkit.WaitTimeout):
			notified <- false
		}
	})
	onEngines(t, func(t *testing.T, eng string) {
		addr := startOn(t, eng, h)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		select {
		case <-started:
		case v := <-notified:
			t.Fatalf("HTTP/1.1: CloseNotifier: %v", v)
		}
		c.Close()
		if !<-notified {
			t.Error("HTTP/1.1: CloseNotify did not fire when the client closed")
		}

		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		resp, err := h2cClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-started:
		case v := <-notified:
			t.Fatalf("HTTP/2: CloseNotifier: %v", v)
		}
		cancel()
		resp.Body.Close()
		if !<-notified {
			t.Error("HTTP/2: CloseNotify did not fire when the client reset the stream")
		}
	})
}

// TestDeadlineTimersStopWithHandler: read and write deadlines set far ahead do
// not outlive the handler: their timers are stopped when it returns, so they do
// not hold the exchange for an hour each (a server setting them per request would
// pile them up).
func TestDeadlineTimersStopWithHandler(t *testing.T) {
	seen := make(chan *exchange, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(time.Hour))
		rc.SetWriteDeadline(time.Now().Add(time.Hour))
		seen <- w.(*responseWriter).x
		io.WriteString(w, "ok")
	})
	onEngines(t, func(t *testing.T, eng string) {
		if _, body := rawGet(t, startOn(t, eng, h), "GET", "/"); body != "ok" {
			t.Fatalf("body %q", body)
		}
		x := <-seen
		testkit.WaitFor(t, "the deadline timers to stop", func() bool {
			x.pipe.mu.Lock()
			defer x.pipe.mu.Unlock()
			return x.pipe.rdl.timer == nil && x.pipe.wdl.timer == nil
		})
	})
}
