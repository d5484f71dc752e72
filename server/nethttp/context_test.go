package nethttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// waitDone fails t unless ch closes within 5 s.
func waitDone(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not done within 5 s", what)
	}
}

func TestReqContextCancelReachesDerivedContexts(t *testing.T) {
	var c reqContext
	if c.Err() != nil {
		t.Fatal("Err before cancel")
	}
	if _, ok := c.Deadline(); ok {
		t.Fatal("a request context has no deadline")
	}
	before := runtime.NumGoroutine()
	child, stopChild := context.WithTimeout(&c, time.Hour)
	defer stopChild()
	kept, stopKept := context.WithCancel(&c)
	stopKept() // removed from the parent before it is cancelled
	ran := make(chan struct{})
	context.AfterFunc(&c, func() { close(ran) })
	stopped := false
	stop := context.AfterFunc(&c, func() { stopped = true })
	if !stop() {
		t.Fatal("stop of a pending AfterFunc reported false")
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("deriving contexts started %d goroutines", n-before)
	}
	done := c.Done()
	select {
	case <-done:
		t.Fatal("Done closed before cancel")
	default:
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ { // cancel races with itself, as OnClose and Run's return do
		wg.Add(1)
		go func() { defer wg.Done(); c.cancel() }()
	}
	wg.Wait()
	waitDone(t, done, "Done")
	waitDone(t, child.Done(), "derived WithTimeout")
	waitDone(t, ran, "AfterFunc")
	if c.Err() != context.Canceled || child.Err() != context.Canceled || context.Cause(child) != context.Canceled {
		t.Fatalf("Err %v, child Err %v, cause %v", c.Err(), child.Err(), context.Cause(child))
	}
	if kept.Err() != context.Canceled { // its own cancel, not the parent's
		t.Fatalf("stopped child Err %v", kept.Err())
	}
	if stopped {
		t.Fatal("a stopped AfterFunc ran")
	}
	// After cancel: a fresh Done is closed, new children are born cancelled.
	waitDone(t, c.Done(), "Done after cancel")
	late, stopLate := context.WithCancel(&c)
	defer stopLate()
	waitDone(t, late.Done(), "child derived after cancel")
	lateRan := make(chan struct{})
	context.AfterFunc(&c, func() { close(lateRan) })
	waitDone(t, lateRan, "AfterFunc after cancel")
}

// TestNetHTTPDerivedContextCanceledOnClientGone: a handler's context.WithTimeout
// of r.Context() ends when the client goes away, long before its own deadline.
func TestNetHTTPDerivedContextCanceledOnClientGone(t *testing.T) {
	canceled := make(chan struct{})
	started := make(chan struct{})
	s := startNetHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, stop := context.WithTimeout(r.Context(), time.Minute)
		defer stop()
		close(started)
		select {
		case <-ctx.Done():
			if ctx.Err() == context.Canceled {
				close(canceled)
			}
		case <-time.After(10 * time.Second):
		}
	}))
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	waitDone(t, started, "handler start")
	c.Close()
	waitDone(t, canceled, "derived context")
}

// baseKey is the key of the value TestContextValuesAsNetHTTP puts in the base.
type baseKey struct{}

// TestContextValuesAsNetHTTP: as under net/http's server, a request's context holds
// the connection's local address (http.LocalAddrContextKey, a *net.TCPAddr equal
// to the listener's address), an *http.Server for http.ServerContextKey, and the
// values of Options.BaseContext, whose cancellation cancels the requests in
// flight; over HTTP/1.1 and HTTP/2, on both engines.
func TestContextValuesAsNetHTTP(t *testing.T) {
	onEngines(t, func(t *testing.T, eng string) {
		base, cancelBase := context.WithCancel(context.WithValue(context.Background(), baseKey{}, "v"))
		defer cancelBase()
		mux := http.NewServeMux()
		mux.HandleFunc("/values", func(w http.ResponseWriter, r *http.Request) {
			la, _ := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
			_, isSrv := r.Context().Value(http.ServerContextKey).(*http.Server)
			fmt.Fprintf(w, "%v %v %v", la, isSrv, r.Context().Value(baseKey{}))
		})
		waiting := make(chan struct{}, 2)
		mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			waiting <- struct{}{}
			<-r.Context().Done()
			io.WriteString(w, r.Context().Err().Error())
		})
		addr := startTimed(t, eng, mux, Options{BaseContext: func() context.Context { return base }}, 0)
		bothProtocols(t, func(t *testing.T, c *http.Client) {
			resp, err := c.Get("http://" + addr + "/values")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := testkit.Body(t, resp), addr+" true v"; got != want {
				t.Fatalf("context values %q, want %q", got, want)
			}
		})
		// Last: the base, once cancelled, cancels every later request too.
		bothProtocols(t, func(t *testing.T, c *http.Client) {
			done := getAsync(c, "http://"+addr+"/wait")
			select {
			case <-waiting:
			case <-time.After(5 * time.Second):
				t.Fatal("the handler did not start")
			}
			cancelBase()
			select {
			case got := <-done:
				if got != "200 "+context.Canceled.Error()+" <nil>" {
					t.Fatalf("body %q, want the handler's answer after its context was cancelled", got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("cancelling the base context did not reach the request")
			}
		})
	})
}

// TestBaseContextDeadlineReachesRequest: a request under a base context with a
// deadline has that deadline, and once it passes its context ends with the base's
// error, context.DeadlineExceeded, as a context derived from it would.
func TestBaseContextDeadlineReachesRequest(t *testing.T) {
	base, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	x := &exchange{}
	x.ctx.x = x
	x.ctx.setBase(base, context.WithoutCancel(base))
	if stop := x.watchBase(); stop != nil {
		defer stop()
	}
	want, _ := base.Deadline()
	if got, ok := x.ctx.Deadline(); !ok || !got.Equal(want) {
		t.Fatalf("Deadline %v %v, want the base's %v", got, ok, want)
	}
	waitDone(t, x.ctx.Done(), "request context under an expired base")
	if err := x.ctx.Err(); err != context.DeadlineExceeded {
		t.Fatalf("Err %v, want %v", err, context.DeadlineExceeded)
	}
}

// TestCauseOfRequestCancelledOnItsOwn: a request context cancelled on its own (the
// client went, the handler returned) keeps context.Canceled as its context.Cause
// when the base context is cancelled later with a cause of its own, as a context
// derived from the base would; the base's values stay visible.
func TestCauseOfRequestCancelledOnItsOwn(t *testing.T) {
	base, cancel := context.WithCancelCause(context.WithValue(context.Background(), baseKey{}, "v"))
	x := &exchange{}
	x.ctx.x = x
	x.ctx.setBase(base, context.WithoutCancel(base))
	x.ctx.cancel()
	cancel(errors.New("shutting down"))
	if err := context.Cause(&x.ctx); err != context.Canceled {
		t.Fatalf("Cause %v, want %v", err, context.Canceled)
	}
	if v := x.ctx.Value(baseKey{}); v != "v" {
		t.Fatalf("base value %v, want v", v)
	}
}
