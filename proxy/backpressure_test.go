package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// stallLimit bounds what may be in flight when one side stops reading: the kernel's
// socket buffers on both connections (a few MiB each on loopback) plus the proxy's
// high-water mark and one read. Without backpressure the proxy would take the whole
// body (128 MiB) into memory.
const stallLimit = 40 << 20

const stallBody = 128 << 20

// stalled waits until counter has not moved for a while, and returns its value.
func stalled(t *testing.T, counter *atomic.Int64) int64 {
	t.Helper()
	last, since := counter.Load(), time.Now()
	waitFor(t, "the writer to stall", func() bool {
		if v := counter.Load(); v != last {
			last, since = v, time.Now()
			return false
		}
		return last > 0 && time.Since(since) > 300*time.Millisecond
	})
	return last
}

func TestProxyBackpressureSlowClient(t *testing.T) {
	var written atomic.Int64
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "134217728")
		buf := make([]byte, 64<<10)
		for written.Load() < stallBody {
			n, err := w.Write(buf)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr := startProxy(t, u, Route{}, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// The client reads nothing: the origin must be held back.
	n := stalled(t, &written)
	t.Logf("origin stalled after %d KiB", n>>10)
	if n > stallLimit {
		t.Fatalf("the origin wrote %d MiB to a client that reads nothing", n>>20)
	}
	// Reading resumes the flow: the origin writes again.
	go io.Copy(io.Discard, bufio.NewReader(c))
	waitFor(t, "the origin to write again", func() bool { return written.Load() > n+(8<<20) })
}

func TestProxyBackpressureSlowOrigin(t *testing.T) {
	release := make(chan struct{})
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		n, _ := io.Copy(io.Discard, r.Body)
		if n != stallBody {
			http.Error(w, "short", http.StatusBadRequest)
		}
	}))
	u := testUpstream(t, []netip.AddrPort{o.addr()}, func(o *UpstreamOptions) { o.Timeouts.Write = time.Minute })
	addr := startProxy(t, u, Route{}, nil)
	var sent atomic.Int64
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 64<<10)
		for sent.Load() < stallBody {
			n, err := pw.Write(buf)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
		pw.Close()
	}()
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+addr+"/", pr)
		req.ContentLength = stallBody
		resp, err := (&http.Client{}).Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// The origin reads nothing: the client must be held back.
	n := stalled(t, &sent)
	t.Logf("client stalled after %d KiB", n>>10)
	if n > stallLimit {
		close(release)
		t.Fatalf("the client sent %d MiB towards an origin that reads nothing", n>>20)
	}
	close(release)
	if st := <-done; st != 200 {
		t.Fatalf("status %d after the origin resumed", st)
	}
}
