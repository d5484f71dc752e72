package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// pattern writes size deterministic bytes to w in blocks, sleeping pause after each
// block (a slow producer), and returns their SHA-256.
func pattern(w io.Writer, size int64, pause time.Duration) (string, error) {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	x := uint32(1)
	for size > 0 {
		n := int64(len(buf))
		if n > size {
			n = size
		}
		for i := range buf[:n] {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			buf[i] = byte(x)
		}
		h.Write(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			return "", err
		}
		size -= n
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// slowReader reads r in small pieces with a pause between them (a slow consumer).
type slowReader struct {
	r     io.Reader
	pause time.Duration
}

func (s slowReader) Read(p []byte) (int, error) {
	if len(p) > 16<<10 {
		p = p[:16<<10]
	}
	time.Sleep(s.pause)
	return s.r.Read(p)
}

func sum(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// streamOrigin serves GET /dl/N (N pattern bytes; ?chunked drops the length, ?slow
// paces the origin) and POST /up (answers the SHA-256 and length of the body, read
// slowly with ?slow).
func streamOrigin(t *testing.T) *origin {
	return newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var pause time.Duration
		if r.URL.Query().Has("slow") {
			pause = 500 * time.Microsecond
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/dl/"):
			size, _ := strconv.ParseInt(r.URL.Path[4:], 10, 64)
			if !r.URL.Query().Has("chunked") {
				w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			}
			w.Header().Set("Trailer", "X-Sum")
			s, err := pattern(w, size, pause)
			if err == nil {
				w.Header().Set("X-Sum", s)
			}
		case r.URL.Path == "/up":
			var body io.Reader = r.Body
			if pause > 0 {
				body = slowReader{r.Body, pause}
			}
			s, n, err := sum(body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(w, "%s %d", s, n)
			if v := r.Trailer.Get("X-Up-Sum"); v != "" {
				fmt.Fprintf(w, " trailer=%s", v)
			}
		}
	}))
}

func streamSize(t *testing.T) int64 {
	if os.Getenv("GALE_HEAVY") == "1" {
		return 1 << 30
	}
	t.Logf("8 MiB; GALE_HEAVY=1 moves 1 GiB")
	return 8 << 20
}

// TestHeavyProxyDownloadUpload moves 8 MiB (1 GiB with GALE_HEAVY=1) each way through
// the proxy in every framing, with a slow client and a slow origin, and reports the
// peak RSS of the test process (origin, proxy and client together).
func TestHeavyProxyDownloadUpload(t *testing.T) {
	defer func() {
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			t.Logf("peak RSS of the test process: %d MiB", ru.Maxrss>>10)
		}
	}()
	o := streamOrigin(t)
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr := startProxy(t, u, Route{}, nil)
	size := streamSize(t)
	want, _ := pattern(io.Discard, size, 0)
	// A whole transfer may take minutes at full size with a slow side.
	long := &http.Client{Transport: client().Transport}
	for _, mode := range []string{"", "?chunked", "?slow", "?chunked&slow", "slow-client"} {
		t.Run("download"+mode, func(t *testing.T) {
			q := mode
			if mode == "slow-client" {
				q = ""
			}
			resp, err := long.Get(fmt.Sprintf("http://%s/dl/%d%s", addr, size, q))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body io.Reader = resp.Body
			if mode == "slow-client" {
				body = slowReader{resp.Body, 200 * time.Microsecond}
			}
			got, n, err := sum(body)
			if err != nil || n != size || got != want {
				t.Fatalf("got %d bytes sum %s err %v, want %d bytes %s", n, got, err, size, want)
			}
			if strings.Contains(mode, "chunked") && resp.Trailer.Get("X-Sum") != want {
				t.Fatalf("trailer X-Sum %q, want %s", resp.Trailer.Get("X-Sum"), want)
			}
		})
	}
	for _, mode := range []string{"length", "chunked", "slow-origin", "slow-client"} {
		t.Run("upload-"+mode, func(t *testing.T) {
			pr, pw := io.Pipe()
			pause := time.Duration(0)
			if mode == "slow-client" {
				pause = 100 * time.Microsecond
			}
			go func() {
				_, err := pattern(pw, size, pause)
				pw.CloseWithError(err)
			}()
			url := "http://" + addr + "/up"
			if mode == "slow-origin" {
				url += "?slow"
			}
			req, _ := http.NewRequest("POST", url, pr)
			if mode != "chunked" {
				req.ContentLength = size
			}
			resp, err := long.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != fmt.Sprintf("%s %d", want, size) {
				t.Fatalf("origin saw %q, want %s %d", b, want, size)
			}
		})
	}
}

func TestProxyExpectContinue(t *testing.T) {
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/deny" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	}))
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr := startProxy(t, u, Route{}, nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	io.WriteString(conn, "POST /ok HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q %v, want the 100 the origin sent", line, err)
	}
	br.ReadString('\n')
	io.WriteString(conn, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "got hello" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	// The origin refuses without reading: the client gets the 403 and no 100.
	io.WriteString(conn, "POST /deny HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("%v %v, want 403 without a 100 first", resp, err)
	}
}

func TestProxyResetMidResponse(t *testing.T) {
	// The origin promises 1 MiB, sends part of it and resets: the client must see a
	// short or failed body, never a complete-looking one. Both framings.
	for _, chunked := range []bool{false, true} {
		o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
			if _, err := readRequestHead(br, log); err != nil {
				return
			}
			if chunked {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n")
			} else {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n")
			}
			c.Write(bytes.Repeat([]byte("a"), 30000))
			c.(*net.TCPConn).SetLinger(0)
		})
		u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
		addr := startProxy(t, u, Route{}, nil)
		resp, err := client().Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("chunked=%v: the body ended cleanly after %d bytes; a cut response must not look complete", chunked, n)
		}
		if n > 30000 {
			t.Fatalf("chunked=%v: %d bytes, more than the origin sent", chunked, n)
		}
	}
}

func TestProxyErrors(t *testing.T) {
	// A port nothing listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	u := testUpstream(t, []netip.AddrPort{dead}, nil)
	addr := startProxy(t, u, Route{}, nil)
	c := client()
	resp, _ := get(t, c, "http://"+addr+"/")
	if resp.StatusCode != 502 {
		t.Fatalf("connect refused: %d, want 502", resp.StatusCode)
	}
	// The client connection stays usable after the 502.
	resp, _ = get(t, c, "http://"+addr+"/again")
	if resp.StatusCode != 502 || resp.Close {
		t.Fatalf("second request: %d close=%v", resp.StatusCode, resp.Close)
	}
	if st := u.Stats(); st.Retries < 1 {
		t.Fatalf("stats %+v: a connect failure should have been retried once", st)
	}

	// Retry on the other server: one dead, one alive; every request succeeds.
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "alive") }))
	u2 := testUpstream(t, []netip.AddrPort{dead, o.addr()}, nil)
	addr2 := startProxy(t, u2, Route{}, nil)
	for i := range 6 {
		resp, body := get(t, c, "http://"+addr2+"/")
		if resp.StatusCode != 200 || body != "alive" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}

	// Invalid framing from the origin: 502, never relayed.
	bad := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		if _, err := readRequestHead(br, log); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	})
	u3 := testUpstream(t, []netip.AddrPort{bad.addr()}, nil)
	addr3 := startProxy(t, u3, Route{}, nil)
	resp, body := get(t, c, "http://"+addr3+"/")
	if resp.StatusCode != 502 || strings.Contains(body, "0\r\n") {
		t.Fatalf("CL+TE from origin: %d %q, want 502", resp.StatusCode, body)
	}

	// No response head in time: 504.
	slow := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		readRequestHead(br, log)
		br.ReadByte() // until the proxy gives up
	})
	u4 := testUpstream(t, []netip.AddrPort{slow.addr()}, func(o *UpstreamOptions) { o.Timeouts.ResponseHeader = 100 * time.Millisecond })
	addr4 := startProxy(t, u4, Route{}, nil)
	resp, _ = get(t, c, "http://"+addr4+"/")
	if resp.StatusCode != 504 {
		t.Fatalf("slow origin: %d, want 504", resp.StatusCode)
	}
}

func TestProxyRandomIdleCloses(t *testing.T) {
	// The origin closes connections at random after a response (as keep-alive
	// timeouts do); under concurrent load no GET may fail.
	var count atomic.Int64
	closer := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		for i := 0; ; i++ {
			if _, err := readRequestHead(br, func([]byte) {}); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			n := count.Add(1)
			if (int64(i)*7+n)%5 == 0 {
				// Close while idle, after a short random-ish wait, or at once.
				if n%2 == 0 {
					time.Sleep(time.Millisecond)
				}
				c.(*net.TCPConn).SetLinger(0)
				return
			}
		}
	})
	u := testUpstream(t, []netip.AddrPort{closer.addr()}, func(o *UpstreamOptions) { o.Retries.Budget = 0 })
	addr := startProxy(t, u, Route{}, nil)
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			c := client()
			for i := range 150 {
				resp, err := c.Get(fmt.Sprintf("http://%s/%d/%d", addr, w, i))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "ok" {
					errs <- fmt.Errorf("status %d body %q", resp.StatusCode, b)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("stats %+v", u.Stats())
}

func TestProxySlowUploadNotHeaderTimeout(t *testing.T) {
	// timeouts.response_header runs from the end of the request: an upload that takes
	// longer than it must not be answered 504.
	o := streamOrigin(t)
	u := testUpstream(t, []netip.AddrPort{o.addr()}, func(o *UpstreamOptions) { o.Timeouts.ResponseHeader = 200 * time.Millisecond })
	addr := startProxy(t, u, Route{}, nil)
	const size = 1 << 20
	want, _ := pattern(io.Discard, size, 0)
	pr, pw := io.Pipe()
	go func() {
		_, err := pattern(pw, size, 40*time.Millisecond) // 16 blocks: about 650 ms
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest("POST", "http://"+addr+"/up", pr)
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != fmt.Sprintf("%s %d", want, size) {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}

func TestProxyRequestTrailers(t *testing.T) {
	o := streamOrigin(t)
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr := startProxy(t, u, Route{}, nil)
	got := roundTrip(t, addr, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Up-Sum\r\n\r\n"+
		"3\r\nabc\r\n0\r\nX-Up-Sum: 42\r\n\r\n")
	want := sha256.Sum256([]byte("abc"))
	if !strings.Contains(got, hex.EncodeToString(want[:])+" 3 trailer=42") {
		t.Fatalf("origin answered %q: the request trailer did not arrive", got)
	}
}
