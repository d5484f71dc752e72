//go:build linux && !galenet

package proxy

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// TestProxyTLSIdleNoGoroutine: concurrent requests to an https upstream open
// several TLS connections; once idle in the pool they hold no goroutine (nginx
// runs in its own process, so every goroutine here is gale's or the test's).
// The Linux engine only: the portable one has a reader goroutine per connection.
func TestProxyTLSIdleNoGoroutine(t *testing.T) {
	dir, _, addr, u := nginxTLS(t)
	os.WriteFile(filepath.Join(dir, "www", "big"), make([]byte, 1<<20), 0o644)
	c := client()
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			resp, err := c.Get("http://" + addr + "/big")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if s := u.Stats(); s.Idle < 3 {
		t.Fatalf("stats %+v: expected several idle TLS connections", s)
	}
	c.CloseIdleConnections()
	waitFor(t, "the client-side goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
	if s := u.Stats(); s.Idle < 3 {
		t.Fatalf("stats %+v: the idle TLS connections went away", s)
	}
}
