package app

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
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
	o := startBodyCountOrigin(t)
	addr := startH2cProxy(t, eng, o.addr, "limits: { body_bytes: 64KiB }")
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
	// The proxy cannot keep the upstream connection of the cut request (its body is
	// incomplete), so it closes it; once the origin has closed it too, the origin has
	// read and recorded all that the proxy sent on it. The head of the cut request may
	// not have left gale at all (the 413 can overtake it, on the portable engine
	// whose writer is a goroutine), so the cut one is at most one.
	testkit.WaitFor(t, "the origin to see the cut request's connection closed", func() bool {
		return o.closed.Load() >= 1
	})
	o.mu.Lock()
	defer o.mu.Unlock()
	whole, cut := 0, 0
	for _, g := range o.got {
		switch {
		case g == "32768 <nil>" || g == "1000 <nil>":
			whole++
		case !strings.HasPrefix(g, "1048576 ") && !strings.HasSuffix(g, " <nil>"):
			cut++
		}
	}
	if whole != 2 || cut > 1 || len(o.got) != whole+cut {
		t.Fatalf("the origin read %q, want the 32 KiB body, at most a cut one (never all 1 MiB) and the 1000 octets", o.got)
	}
}

// TestH2BodyTimeout: timeouts.body holds for an HTTP/2 request body as it does for
// an HTTP/1.1 one: a stream whose body stops arriving for longer is answered 408 (and
// reset with RST_STREAM NO_ERROR if it is still open another timeouts.body later), and
// the proxy gives up its upstream request; it used
// to wait for the body forever, holding the stream and an upstream connection. A
// body that keeps arriving, piece by piece within the timeout, goes through. On
// epoll and io_uring.
func TestH2BodyTimeout(t *testing.T) { onLinuxEngines(t, testH2BodyTimeout) }

func testH2BodyTimeout(t *testing.T, eng string) {
	o := startBodyCountOrigin(t)
	addr := startH2cProxy(t, eng, o.addr, "timeouts: { body: 1s }")
	c, fr := testkit.H2Open(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	post := func(id uint32) {
		hb.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/up"}, {":authority", "x"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	// Stream 1 sends one piece and stalls; stream 3 sends a piece every 300 ms.
	post(1)
	fr.WriteData(1, false, []byte("part"))
	post(3)
	start := time.Now()
	status := map[uint32]string{}
	rst := map[uint32]http2.ErrCode{}
	dec := hpack.NewDecoder(4096, nil)
	var wmu sync.Mutex // the Framer's writes: this goroutine's and the writer's
	go func() {
		for i := range 6 {
			time.Sleep(300 * time.Millisecond)
			wmu.Lock()
			fr.WriteData(3, i == 5, []byte("piece"))
			wmu.Unlock()
		}
	}()
	var took time.Duration
	for status[3] == "" || rst[1] == 0 && status[1] == "" || took == 0 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v (status %v, resets %v)", err, status, rst)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				wmu.Lock()
				fr.WriteSettingsAck()
				wmu.Unlock()
			}
		case *http2.HeadersFrame:
			fields, _ := dec.DecodeFull(f.HeaderBlockFragment())
			status[f.StreamID] = fields[0].Value
			if f.StreamID == 1 {
				took = time.Since(start)
			}
		case *http2.RSTStreamFrame:
			rst[f.StreamID] = f.ErrCode
		}
	}
	if status[1] != "408" || took < 900*time.Millisecond || took > 5*time.Second {
		t.Fatalf("stalled stream: status %q after %v, want 408 after about 1 s", status[1], took)
	}
	if status[3] != "200" {
		t.Fatalf("steady stream: status %q, want 200", status[3])
	}
	testkit.WaitFor(t, "the origin to see both requests end", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.got) == 2
	})
	o.mu.Lock()
	defer o.mu.Unlock()
	if !slices.Contains(o.got, "30 <nil>") || slices.Contains(o.got, "4 <nil>") {
		t.Fatalf("the origin read %q, want the steady 30 octets and a cut stalled body", o.got)
	}
}

// bodyCountOrigin is a Go HTTP/1.1 origin that reads each request body to its end and
// records, per request, the octets read and how the body ended, and counts the
// connections it has closed (each after its last handler returned).
type bodyCountOrigin struct {
	addr   string
	mu     sync.Mutex
	got    []string
	closed atomic.Int64
}

func startBodyCountOrigin(t *testing.T) *bodyCountOrigin {
	o := &bodyCountOrigin{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, err := io.Copy(io.Discard, r.Body)
			o.mu.Lock()
			o.got = append(o.got, fmt.Sprintf("%d %v", n, err))
			o.mu.Unlock()
			fmt.Fprintf(w, "read %d", n)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed {
				o.closed.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	o.addr = ln.Addr().String()
	return o
}
