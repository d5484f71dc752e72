package health

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
)

// startLoop runs a one-loop engine for the test and returns its loop.
func startLoop(t *testing.T) *engine.Loop {
	t.Helper()
	e, err := engine.New(engine.Config{Workers: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Shutdown(ctx)
	})
	return e.Loops()[0]
}

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// switchable is an HTTP origin whose status and body the test changes, and which
// can be stopped and started again on the same port.
type switchable struct {
	t      *testing.T
	addr   netip.AddrPort
	status atomic.Int32
	body   atomic.Pointer[string]
	hits   atomic.Int64
	mu     sync.Mutex
	srv    *http.Server
}

func newSwitchable(t *testing.T) *switchable {
	s := &switchable{t: t}
	s.status.Store(200)
	b := "ok"
	s.body.Store(&b)
	s.start("127.0.0.1:0")
	t.Cleanup(s.stop)
	return s
}

func (s *switchable) start(addr string) {
	s.t.Helper()
	var ln net.Listener
	var err error
	// The port of a stopped origin can be briefly busy; retry within a bound.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = netip.MustParseAddrPort(ln.Addr().String())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.WriteHeader(int(s.status.Load()))
		w.Write([]byte(*s.body.Load()))
	})}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

func (s *switchable) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (s *switchable) restart() { s.start(s.addr.String()) }

func (s *switchable) setBody(b string) { s.body.Store(&b) }

func down(g *Group, i int) bool { return g.unavail.Load()&(1<<i) != 0 }
