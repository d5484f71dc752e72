package testkit

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Origin is an HTTP origin for failure tests: the test sets its status, body and
// delay at any time, counts its requests, and can stop it and start it again on
// the same port. It stops when the test ends.
type Origin struct {
	Addr   netip.AddrPort
	Status atomic.Int32 // the status of every response (default 200)
	Delay  atomic.Int64 // nanoseconds each response waits
	Hits   atomic.Int64 // requests answered
	body   atomic.Pointer[string]
	t      testing.TB
	mu     sync.Mutex
	srv    *http.Server
}

// NewOrigin starts an origin on 127.0.0.1 answering 200 with "from ADDR".
func NewOrigin(t testing.TB) *Origin {
	t.Helper()
	o := &Origin{t: t}
	o.Status.Store(200)
	o.start("127.0.0.1:0")
	b := "from " + o.Addr.String()
	o.body.Store(&b)
	t.Cleanup(o.Stop)
	return o
}

// SetBody sets the body of every response.
func (o *Origin) SetBody(b string) { o.body.Store(&b) }

func (o *Origin) start(addr string) {
	o.t.Helper()
	var ln net.Listener
	var err error
	// The port of a stopped origin can be busy for a moment; retry within a bound.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		o.t.Fatal(err)
	}
	o.Addr = netip.MustParseAddrPort(ln.Addr().String())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.Hits.Add(1)
		if d := o.Delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		w.WriteHeader(int(o.Status.Load()))
		io.WriteString(w, *o.body.Load())
	})}
	o.mu.Lock()
	o.srv = srv
	o.mu.Unlock()
	go srv.Serve(ln)
}

// Stop closes the origin's listener and connections.
func (o *Origin) Stop() {
	o.mu.Lock()
	srv := o.srv
	o.srv = nil
	o.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Restart listens again on the origin's port.
func (o *Origin) Restart() { o.start(o.Addr.String()) }

// Load is a closed-loop load of GETs from several keep-alive clients, counting
// requests and failures (errors and statuses other than 200).
type Load struct {
	Done, Failed atomic.Int64
	stop         chan struct{}
	wg           sync.WaitGroup
}

// StartLoad starts clients goroutines sending GETs to url until Stop.
func StartLoad(url string, clients int) *Load {
	l := &Load{stop: make(chan struct{})}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					l.Failed.Add(1)
				}
				l.Done.Add(1)
			}
		}()
	}
	return l
}

// Stop ends the load and waits for the clients' last requests.
func (l *Load) Stop() {
	close(l.stop)
	l.wg.Wait()
}
