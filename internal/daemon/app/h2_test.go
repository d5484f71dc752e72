package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startH2CApp serves a respond route at /hello and a static root holding a 10 MiB file
// of random bytes (big.bin) and a small one (small.txt), over http1 and h2c.
func startH2CApp(t *testing.T) (addr string, big []byte) {
	t.Helper()
	dir := t.TempDir()
	big = make([]byte, 10<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "small.txt"), []byte("small file\n"), 0o644)
	_, addr = startApp(t, `
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    routes:
      - match: { path_exact: /hello }
        respond: { status: 200, body: "hello, world\n", headers: { Content-Type: text/plain } }
      - match: { path: / }
        static: { root: `+dir+` }
`)
	return addr, big
}

// h2c returns Go's HTTP/2 client (net/http's bundled x/net/http2) speaking h2c by
// prior knowledge.
func h2c(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func do(t *testing.T, c *http.Client, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("%s %s answered over %s", method, url, resp.Proto)
	}
	return resp, b
}

// TestH2CStaticByteExact serves a 10 MiB file over h2c whole (SHA-256 compared),
// by single and multiple ranges, and answers conditionals as on HTTP/1.1.
func TestH2CStaticByteExact(t *testing.T) {
	addr, big := startH2CApp(t)
	c := h2c(t)
	url := "http://" + addr + "/big.bin"
	resp, b := do(t, c, "GET", url)
	if resp.StatusCode != 200 || sha256.Sum256(b) != sha256.Sum256(big) || resp.ContentLength != int64(len(big)) {
		t.Fatalf("whole file: status %d, %d bytes, length %d", resp.StatusCode, len(b), resp.ContentLength)
	}
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lm == "" {
		t.Fatalf("no validators: %v", resp.Header)
	}
	resp, b = do(t, c, "GET", url, "Range", "bytes=5000000-5999999")
	if resp.StatusCode != 206 || !bytes.Equal(b, big[5000000:6000000]) ||
		resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 5000000-5999999/%d", len(big)) {
		t.Fatalf("range: status %d, %d bytes, %q", resp.StatusCode, len(b), resp.Header.Get("Content-Range"))
	}
	resp, b = do(t, c, "GET", url, "Range", "bytes=-100")
	if resp.StatusCode != 206 || !bytes.Equal(b, big[len(big)-100:]) {
		t.Fatalf("suffix range: status %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, b = do(t, c, "GET", url, "Range", "bytes=0-9,1048576-1048585")
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	mr := multipart.NewReader(bytes.NewReader(b), params["boundary"])
	var parts [][]byte
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		pb, _ := io.ReadAll(p)
		parts = append(parts, pb)
	}
	if resp.StatusCode != 206 || len(parts) != 2 || !bytes.Equal(parts[0], big[:10]) || !bytes.Equal(parts[1], big[1<<20:1<<20+10]) {
		t.Fatalf("multipart ranges: status %d, %d parts", resp.StatusCode, len(parts))
	}
	if resp, b = do(t, c, "GET", url, "If-None-Match", etag); resp.StatusCode != 304 || len(b) != 0 {
		t.Fatalf("If-None-Match: status %d, %d bytes", resp.StatusCode, len(b))
	}
	if resp, _ = do(t, c, "GET", url, "If-Modified-Since", lm); resp.StatusCode != 304 {
		t.Fatalf("If-Modified-Since: status %d", resp.StatusCode)
	}
	if resp, b = do(t, c, "GET", url, "Range", "bytes=0-99", "If-Range", `"other"`); resp.StatusCode != 200 || len(b) != len(big) {
		t.Fatalf("If-Range mismatch: status %d, %d bytes", resp.StatusCode, len(b))
	}
	if resp, b = do(t, c, "HEAD", url); resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != int64(len(big)) {
		t.Fatalf("HEAD: status %d, %d bytes, length %d", resp.StatusCode, len(b), resp.ContentLength)
	}
	if resp, _ = do(t, c, "GET", url, "Range", "bytes=99999999-"); resp.StatusCode != 416 {
		t.Fatalf("unsatisfiable range: status %d", resp.StatusCode)
	}
	if resp, b = do(t, c, "GET", "http://"+addr+"/hello"); resp.StatusCode != 200 || string(b) != "hello, world\n" {
		t.Fatalf("respond: %d %q", resp.StatusCode, b)
	}
	// HTTP/1.1 on the same address still works.
	r1, err := http.Get("http://" + addr + "/small.txt")
	if err != nil {
		t.Fatal(err)
	}
	r1.Body.Close()
	if r1.ProtoMajor != 1 || r1.StatusCode != 200 {
		t.Fatalf("HTTP/1.1 beside h2c: %s %d", r1.Proto, r1.StatusCode)
	}
}

// TestH2CCurlAndNghttp drives the respond and static routes with curl
// --http2-prior-knowledge and nghttp, two HTTP/2 clients written elsewhere.
func TestH2CCurlAndNghttp(t *testing.T) {
	addr, big := startH2CApp(t)
	sum := fmt.Sprintf("%x", sha256.Sum256(big))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := exec.LookPath("curl"); err == nil {
		for path, want := range map[string]string{"/hello": "hello, world\n", "/small.txt": "small file\n"} {
			out, err := exec.CommandContext(ctx, "curl", "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}", "http://"+addr+path).Output()
			if err != nil || string(out) != want+"\n2 200" {
				t.Errorf("curl %s: %q, %v", path, out, err)
			}
		}
		out, err := exec.CommandContext(ctx, "sh", "-c", "curl -sS --http2-prior-knowledge http://"+addr+"/big.bin | sha256sum").Output()
		if err != nil || !strings.HasPrefix(string(out), sum) {
			t.Errorf("curl big.bin: %q, %v", out, err)
		}
		out, err = exec.CommandContext(ctx, "curl", "-sS", "--http2-prior-knowledge", "-r", "100-199", "-o", "/dev/null", "-w", "%{http_version} %{http_code} %{size_download}", "http://"+addr+"/big.bin").Output()
		if err != nil || string(out) != "2 206 100" {
			t.Errorf("curl range: %q, %v", out, err)
		}
	} else {
		t.Log("curl not installed")
	}
	if _, err := exec.LookPath("nghttp"); err != nil {
		t.Skip("nghttp not installed (nghttp2-client)")
	}
	for path, want := range map[string]string{"/hello": "hello, world\n", "/small.txt": "small file\n"} {
		out, err := exec.CommandContext(ctx, "nghttp", "-v", "http://"+addr+path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), ":status: 200") || !strings.Contains(string(out), want) {
			t.Errorf("nghttp %s: %v\n%s", path, err, out)
		}
	}
	// nghttp -n discards the body; -s prints statistics, with the body size received.
	out, err := exec.CommandContext(ctx, "nghttp", "-ns", "http://"+addr+"/big.bin").CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)\s200\s.*\s10M\s`).Match(out) && !strings.Contains(string(out), "10M") {
		t.Errorf("nghttp big.bin: %v\n%s", err, out)
	}
	// Ten streams at once on one connection.
	args := []string{"-n", "-m", "10", "http://" + addr + "/small.txt"}
	if out, err := exec.CommandContext(ctx, "nghttp", args...).CombinedOutput(); err != nil {
		t.Errorf("nghttp -m 10: %v\n%s", err, out)
	}
}

// TestH2Spec runs h2spec in strict mode against a gale listener serving h2c beside
// HTTP/1.1 (the daemon's router, a respond route): every case must pass. It runs when
// h2spec is on PATH, in GOPATH/bin (scripts/test.sh installs it there) or named by
// GALE_H2SPEC.
func TestH2Spec(t *testing.T) {
	bin := h2specBin(t)
	// h2c alone: every case must pass. Beside HTTP/1.1 on one address, the invalid
	// preface of case 3.5/2 is an HTTP/1 request to the listener (answered 400, then
	// closed), which h2spec counts as a failure; that case alone is allowed to fail.
	for protocols, allowed := range map[string]string{"[h2c]": "0", "[http1, h2c]": "1"} {
		_, addr := startApp(t, `
workers: 2
servers:
  - listen: ["127.0.0.1:0"]
    protocols: `+protocols+`
    routes:
      - match: { path: / }
        respond: { status: 200, body: "hello, world\n", headers: { Content-Type: text/plain } }
`)
		host, port, _ := net.SplitHostPort(addr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, _ := exec.CommandContext(ctx, bin, "-S", "-h", host, "-p", port, "-o", "5").CombinedOutput()
		cancel()
		m := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindSubmatch(out)
		if m == nil || string(m[4]) != allowed || string(m[3]) != "0" ||
			allowed == "1" && !strings.Contains(string(out), "× 2: Sends invalid connection preface") {
			t.Fatalf("h2spec -S, protocols %s:\n%s", protocols, out)
		}
		t.Logf("h2spec -S, protocols %s: %s", protocols, m[0])
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// h2specBin finds h2spec: GALE_H2SPEC, PATH or GOPATH/bin (scripts/test.sh installs
// it there); the test is skipped without it.
func h2specBin(t *testing.T) string {
	bin := os.Getenv("GALE_H2SPEC")
	if bin == "" {
		bin, _ = exec.LookPath("h2spec")
	}
	if bin == "" {
		if gp, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			if p := filepath.Join(strings.TrimSpace(string(gp)), "bin", "h2spec"); fileExists(p) {
				bin = p
			}
		}
	}
	if bin == "" {
		t.Skip("h2spec not installed (go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1)")
	}
	return bin
}
