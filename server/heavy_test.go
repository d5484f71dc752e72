package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// heavy reports whether the full-size heavy tests run (GALE_HEAVY=1, set by the
// test script's own step without the race detector). Otherwise the same tests run
// at a reduced size, and say so.
func heavy(t *testing.T) bool {
	if os.Getenv("GALE_HEAVY") == "1" {
		return true
	}
	t.Logf("reduced size; GALE_HEAVY=1 runs the full size")
	return false
}

// pattern is a deterministic byte stream: block i is filled from i.
func fillPattern(buf []byte, block int) {
	x := uint32(block)*2654435761 + 1
	for i := range buf {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		buf[i] = byte(x)
	}
}

const patternBlock = 64 << 10

func patternSum(total int64) []byte {
	h := sha256.New()
	buf := make([]byte, patternBlock)
	for i := 0; int64(i)*patternBlock < total; i++ {
		fillPattern(buf, i)
		h.Write(buf)
	}
	return h.Sum(nil)
}

// downloadHandler streams `size` pattern bytes with backpressure.
var downloadHandler = HandlerFunc(func(c *Ctx) {
	size, _ := strconv.ParseInt(string(c.Request().Path[1:]), 10, 64)
	c.SetContentLength(size)
	c.WriteHeader(200)
	buf := make([]byte, patternBlock)
	block := 0
	var pump func()
	pump = func() {
		for c.written < size {
			if c.Buffered() >= 1<<20 {
				c.OnDrain(pump)
				return
			}
			fillPattern(buf, block)
			block++
			c.Write(buf)
		}
		c.End()
	}
	pump()
})

// uploadHandler hashes the request body as it streams in and answers the hex sum.
var uploadHandler = HandlerFunc(func(c *Ctx) {
	var h hash.Hash = sha256.New()
	var n int64
	c.OnBody(func(p []byte, end bool) {
		h.Write(p)
		n += int64(len(p))
		if end {
			c.Respond(200, "text/plain", []byte(fmt.Sprintf("%d %x", n, h.Sum(nil))))
		}
	})
})

func TestHeavyStreamingDownload(t *testing.T) {
	size := int64(32 << 20)
	if heavy(t) {
		size = 1 << 30
	}
	s := startServer(t, downloadHandler, func(o *Options) { o.Workers = 1 })
	c := testkit.Dial(t, s.Addr())
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", size)
	br := bufio.NewReaderSize(c, 64<<10)
	resp := testkit.ReadResponse(t, br, "GET")
	if resp.ContentLength != size {
		t.Fatalf("Content-Length %d", resp.ContentLength)
	}
	// A slow reader first: the server must hold its queue at the high-water mark.
	h := sha256.New()
	small := make([]byte, 4096)
	for i := 0; i < 50; i++ {
		n, err := resp.Body.Read(small)
		h.Write(small[:n])
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), patternSum(size)) {
		t.Fatalf("download checksum mismatch after %d bytes", n)
	}
}

func TestHeavyStreamingUpload(t *testing.T) {
	size := int64(32 << 20)
	if heavy(t) {
		size = 1 << 30
	}
	s := startServer(t, uploadHandler, func(o *Options) {
		o.Workers = 1
		o.Limits.MaxBodyBytes = 2 << 30
	})
	c := testkit.Dial(t, s.Addr())
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	buf := make([]byte, patternBlock)
	for i := 0; int64(i)*patternBlock < size; i++ {
		fillPattern(buf, i)
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	resp := testkit.ReadResponse(t, bufio.NewReader(c), "POST")
	want := fmt.Sprintf("%d %s", size, hex.EncodeToString(patternSum(size)))
	if got := testkit.Body(t, resp); got != want {
		t.Fatalf("upload: server saw %q, want %q", got, want)
	}
}

// TestHeavyConcurrentConnections holds many keep-alive connections, each having
// served one request. At full size the clients live in a child process, because a
// process that is both client and server spends two descriptors per connection and
// the limit here is 20,000.
func TestHeavyConcurrentConnections(t *testing.T) {
	n := 1000
	if heavy(t) {
		n = 15000
	}
	s := startServer(t, echoPath, func(o *Options) { o.Workers = 2 })
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperClients$", "-test.v")
	cmd.Env = append(os.Environ(), "GALE_HELPER_CLIENTS="+strconv.Itoa(n), "GALE_HELPER_ADDR="+s.Addr())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	sc := bufio.NewScanner(stdout)
	var report string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "CLIENTS ") {
			report = sc.Text()
			break
		}
	}
	if report != fmt.Sprintf("CLIENTS ok=%d", n) {
		t.Fatalf("client report %q, want %d ok", report, n)
	}
	if active := s.Engine().Stats().Active; active != int64(n) {
		t.Fatalf("server holds %d connections, want %d", active, n)
	}
}

// TestHelperClients is the child process of TestHeavyConcurrentConnections.
func TestHelperClients(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GALE_HELPER_CLIENTS"))
	addr := os.Getenv("GALE_HELPER_ADDR")
	if n == 0 {
		t.Skip("helper process only")
	}
	conns := make([]net.Conn, 0, n)
	ok := 0
	for i := 0; i < n; i++ {
		// Spread over source addresses so that earlier tests' TIME_WAIT sockets and the
		// ephemeral port range do not limit the count.
		d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i/4000))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dial %d: %v\n", i, err)
			break
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /c%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		want := fmt.Sprintf("/c%d", i)
		resp, err := httpReadResponse(bufio.NewReader(c))
		if err == nil && resp == want {
			ok++
		}
	}
	fmt.Printf("CLIENTS ok=%d\n", ok)
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// httpReadResponse reads one response with a Content-Length body and returns the body.
func httpReadResponse(br *bufio.Reader) (string, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
