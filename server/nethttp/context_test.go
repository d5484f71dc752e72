package nethttp

import (
	"context"
	"io"
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
