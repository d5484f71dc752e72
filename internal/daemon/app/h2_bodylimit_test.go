package app

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gale-server/gale/internal/testkit"
)

// TestH2BodyLimitWithoutLength: limits.body_bytes holds for an HTTP/2 request body
// without content-length, as it does for a chunked HTTP/1.1 one: past the limit the
// client gets 413 and the proxy stops forwarding, so the origin never receives the
// whole body (it used to receive all of it, 12 MB past a 10 MiB limit, through any
// route that streams the body). A body within the limit goes through, a declared
// length above it is refused before the origin is asked, and the connection serves
// on. On epoll and io_uring.
func TestH2BodyLimitWithoutLength(t *testing.T) { onLinuxEngines(t, testH2BodyLimitWithoutLength) }

func testH2BodyLimitWithoutLength(t *testing.T, eng string) {
	var mu sync.Mutex
	var got []string // per request the origin served: octets read and how the body ended
	origin := startGoOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, fmt.Sprintf("%d %v", n, err))
		mu.Unlock()
		fmt.Fprintf(w, "read %d", n)
	}))
	addr := startH2cProxy(t, eng, origin, "limits: { body_bytes: 64KiB }")
	c := testkit.H2CClient(t)
	post := func(n int, known bool) (int, string) {
		t.Helper()
		body := io.Reader(bytes.NewReader(make([]byte, n)))
		if !known {
			body = io.MultiReader(body) // hides the length: no content-length
		}
		req, _ := http.NewRequest("POST", "http://"+addr+"/up", body)
		if !known {
			req.ContentLength = -1
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %d octets (length known %v): %v", n, known, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(32<<10, false); code != 200 || body != "read 32768" {
		t.Fatalf("32 KiB without length: %d %q", code, body)
	}
	if code, body := post(1<<20, false); code != 413 || !strings.Contains(body, "request body too large") {
		t.Fatalf("1 MiB without length: %d %q, want 413", code, body)
	}
	if code, _ := post(1<<20, true); code != 413 {
		t.Fatalf("1 MiB with content-length: %d, want 413", code)
	}
	if code, body := post(1000, false); code != 200 || body != "read 1000" {
		t.Fatalf("after the 413s: %d %q", code, body)
	}
	// The origin hears of the cut body when the proxy closes its connection; wait
	// for that before reading what it saw.
	testkit.WaitFor(t, "the origin to finish the cut request", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 3
	})
	mu.Lock()
	defer mu.Unlock()
	// The cut request may end after the last one, on its own upstream connection.
	whole, cut := 0, 0
	for _, g := range got {
		switch {
		case g == "32768 <nil>" || g == "1000 <nil>":
			whole++
		case !strings.HasPrefix(g, "1048576 ") && !strings.HasSuffix(g, " <nil>"):
			cut++
		}
	}
	if len(got) != 3 || whole != 2 || cut != 1 {
		t.Fatalf("the origin read %q, want the 32 KiB body, a cut one (never all 1 MiB) and the 1000 octets", got)
	}
}
