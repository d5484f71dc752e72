package app

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// streamOrigin is a Go HTTP/1.1 origin: /echo streams the request body back as it
// arrives (with a trailer carrying the body's SHA-256), /big streams 16 MiB in flushed
// 64 KiB pieces, /cut sends half its declared body and closes the connection, anything
// else answers with what it received. It records the protocol of every request.
type streamOrigin struct {
	mu     sync.Mutex
	protos []string
	big    []byte
}

func (o *streamOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.protos = append(o.protos, r.Proto)
	o.mu.Unlock()
	switch r.URL.Path {
	case "/up/echo":
		// HTTP/1 handlers of net/http read the rest of the body before the response
		// starts unless they ask for full duplex.
		http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Trailer", "X-Sum")
		h := sha256.New()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				h.Write(buf[:n])
				w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				break
			}
		}
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
	case "/up/big":
		for off := 0; off < len(o.big); off += 64 << 10 {
			w.Write(o.big[off : off+64<<10])
			w.(http.Flusher).Flush()
		}
	case "/up/cut":
		w.Header().Set("Content-Length", "100000")
		w.Write(make([]byte, 50000))
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	default:
		fmt.Fprintf(w, "%s %s host=%s xff=%s te=%q cl=%d clf=%q via=%q\n", r.Method, r.URL.RequestURI(), r.Host,
			r.Header.Get("X-Forwarded-For"), r.TransferEncoding, r.ContentLength, r.Header.Values("Content-Length"), r.Header.Get("Via"))
	}
}

// TestH2ClientsThroughProxy: HTTP/2 clients (Go's x/net/http2 over h2c, and curl) are
// served by a proxy route from an HTTP/1.1 origin through the upstream pool: plain
// GETs, a request body of unknown length (chunked upstream) and one with a length,
// both streamed back by the origin while they arrive (4 MiB, SHA-256 compared, trailer
// relayed), a 16 MiB streamed download, and an origin that dies mid-body, which resets
// only that stream.
func TestH2ClientsThroughProxy(t *testing.T) {
	o := &streamOrigin{big: make([]byte, 16<<20)}
	rand.Read(o.big)
	origin := startGoOrigin(t, o)
	_, addr := startApp(t, `
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    routes:
      - match: { path: /up/ }
        proxy: { upstreams: [`+origin+`], via: gale }
`)
	c := h2c(t)
	base := "http://" + addr
	for i := range 3 {
		resp, body := do(t, c, "GET", base+"/up/a?b=1")
		if want := "GET /up/a?b=1 host=" + origin + " xff=127.0.0.1 te=[] cl=0 clf=[] via=\"2 gale\"\n"; resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("GET %d: %d %q, want %q", i, resp.StatusCode, body, want)
		}
	}

	payload := make([]byte, 4<<20)
	rand.Read(payload)
	sum := fmt.Sprintf("%x", sha256.Sum256(payload))
	for _, known := range []bool{false, true} {
		var body io.Reader
		if known {
			body = bytes.NewReader(payload)
		} else {
			pr, pw := io.Pipe()
			go func() {
				for off := 0; off < len(payload); off += 100 << 10 {
					pw.Write(payload[off:min(off+100<<10, len(payload))])
				}
				pw.Close()
			}()
			body = pr
		}
		req, _ := http.NewRequest("POST", base+"/up/echo", body)
		if known {
			req.ContentLength = int64(len(payload))
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("echo (length known %v): %v %s %d", known, err, resp.Proto, resp.StatusCode)
		}
		if g := fmt.Sprintf("%x", sha256.Sum256(got)); g != sum || len(got) != len(payload) {
			t.Fatalf("echo (length known %v): %d bytes back, sum differs", known, len(got))
		}
		if tr := resp.Trailer.Get("X-Sum"); tr != sum {
			t.Fatalf("echo (length known %v): trailer X-Sum %q, want %q", known, tr, sum)
		}
	}

	resp, got := do(t, c, "GET", base+"/up/big")
	if resp.StatusCode != 200 || !bytes.Equal(got, o.big) {
		t.Fatalf("big: %d, %d bytes, equal %v", resp.StatusCode, len(got), bytes.Equal(got, o.big))
	}

	// An origin that dies mid-body: the stream is reset, the connection serves on.
	if resp, err := c.Get(base + "/up/cut"); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatal("a cut upstream body reached the client as complete")
		}
	}
	resp, body := do(t, c, "GET", base+"/up/after")
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "GET /up/after") {
		t.Fatalf("after the cut: %d %q", resp.StatusCode, body)
	}
	o.mu.Lock()
	for _, p := range o.protos {
		if p != "HTTP/1.1" {
			t.Errorf("origin saw %s", p)
		}
	}
	o.mu.Unlock()

	if _, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command("curl", "-sS", "--max-time", "20", "--http2-prior-knowledge", "-d", "x=1",
			"-w", "\n%{http_version} %{http_code}", base+"/up/form").Output()
		if want := "POST /up/form host=" + origin + " xff=127.0.0.1 te=[] cl=3 clf=[\"3\"] via=\"2 gale\"\n\n2 200"; err != nil || string(out) != want {
			t.Fatalf("curl through the proxy: %q, %v; want %q", out, err, want)
		}
	}
}
