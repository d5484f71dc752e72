package static

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
)

// startGale serves h on 127.0.0.1:0 with a real gale server and returns its base URL.
func startGale(t *testing.T, h *Handler) string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	srv, err := server.New(server.Options{Handler: h, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + srv.Addr()
}

func TestSocketCurl(t *testing.T) {
	root := t.TempDir()
	big := bigContent(5 << 20)
	writeTree(t, root, map[string]string{
		"index.html":    "<h1>home</h1>",
		"small.txt":     "0123456789",
		"big.bin":       big,
		"docs/a.txt":    "a",
		"app.js":        strings.Repeat("console.log('x');\n", 500),
		"sub/page.html": "page",
	})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Repeat("console.log('x');\n", 500)))
	zw.Close()
	if err := os.WriteFile(filepath.Join(root, "app.js.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, Options{Root: root, Browse: true, CacheControl: "public, max-age=60"})
	base := startGale(t, h)

	head, body := testkit.Curl(t, base+"/small.txt")
	if testkit.StatusOf(head) != "200" || body != "0123456789" || testkit.HeadField(head, "Content-Length") != "10" ||
		testkit.HeadField(head, "Cache-Control") != "public, max-age=60" || testkit.HeadField(head, "Date") == "" {
		t.Fatalf("small file:\n%s%q", head, body)
	}
	etag := testkit.HeadField(head, "ETag")

	head, body = testkit.Curl(t, base+"/big.bin")
	if testkit.StatusOf(head) != "200" || sha256.Sum256([]byte(body)) != sha256.Sum256([]byte(big)) {
		t.Fatalf("big file: %s, %d bytes", testkit.StatusOf(head), len(body))
	}
	head, _ = testkit.Curl(t, "-I", base+"/big.bin")
	if testkit.StatusOf(head) != "200" || testkit.HeadField(head, "Content-Length") != "5242880" {
		t.Fatalf("HEAD:\n%s", head)
	}
	head, body = testkit.Curl(t, "-r", "1000-1999", base+"/big.bin")
	if testkit.StatusOf(head) != "206" || body != big[1000:2000] || testkit.HeadField(head, "Content-Range") != "bytes 1000-1999/5242880" {
		t.Fatalf("range:\n%s", head)
	}
	head, body = testkit.Curl(t, "-r", "0-9,4000000-4000009", base+"/big.bin")
	if testkit.StatusOf(head) != "206" || !strings.HasPrefix(testkit.HeadField(head, "Content-Type"), "multipart/byteranges; boundary=") ||
		!strings.Contains(body, big[:10]) || !strings.Contains(body, big[4000000:4000010]) {
		t.Fatalf("multipart:\n%s%q", head, body)
	}
	head, _ = testkit.Curl(t, "-r", "9000000-", base+"/big.bin")
	if testkit.StatusOf(head) != "416" || testkit.HeadField(head, "Content-Range") != "bytes */5242880" {
		t.Fatalf("416:\n%s", head)
	}
	head, body = testkit.Curl(t, "-H", "If-None-Match: "+etag, base+"/small.txt")
	if testkit.StatusOf(head) != "304" || body != "" || testkit.HeadField(head, "ETag") != etag {
		t.Fatalf("304:\n%s%q", head, body)
	}
	head, body = testkit.Curl(t, "--compressed", "-H", "Accept-Encoding: gzip", base+"/app.js")
	if testkit.HeadField(head, "Content-Encoding") != "gzip" || testkit.HeadField(head, "Vary") != "Accept-Encoding" ||
		body != strings.Repeat("console.log('x');\n", 500) {
		t.Fatalf("gzip variant:\n%s", head)
	}
	head, _ = testkit.Curl(t, base+"/docs?x=1")
	if testkit.StatusOf(head) != "301" || testkit.HeadField(head, "Location") != "/docs/?x=1" {
		t.Fatalf("redirect:\n%s", head)
	}
	head, body = testkit.Curl(t, "-H", "Accept: application/json", base+"/docs/")
	if testkit.StatusOf(head) != "200" || !strings.Contains(body, `"name":"a.txt"`) {
		t.Fatalf("JSON listing:\n%s%s", head, body)
	}
	head, _ = testkit.Curl(t, "--path-as-is", base+"/../../../../etc/passwd")
	if testkit.StatusOf(head) != "400" {
		t.Fatalf("traversal:\n%s", head)
	}
	head, _ = testkit.Curl(t, base+"/%2e%2e/%2e%2e/etc/passwd")
	if testkit.StatusOf(head) != "400" {
		t.Fatalf("encoded traversal:\n%s", head)
	}
	head, _ = testkit.Curl(t, "-X", "POST", base+"/small.txt")
	if testkit.StatusOf(head) != "405" || testkit.HeadField(head, "Allow") != "GET, HEAD" {
		t.Fatalf("POST:\n%s", head)
	}
}

// TestSocketKeepAlive sends responses of every framing over one connection: a body
// from memory, a 304 without body, a 206 from sendfile, a 404, a redirect and a full
// sendfile body.
func TestSocketKeepAlive(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"small.txt": "0123456789", "big.bin": bigContent(1 << 20), "d/x": "x"})
	h := newHandler(t, Options{Root: root})
	base := startGale(t, h)
	head, _ := testkit.Curl(t, base+"/small.txt")
	etag := testkit.HeadField(head, "ETag")

	requests := [][]string{
		{base + "/small.txt"},
		{"-H", "If-None-Match: " + etag, base + "/small.txt"},
		{"-r", "10-20", base + "/big.bin"},
		{base + "/missing"},
		{base + "/d"},
		{base + "/big.bin"},
	}
	var args []string
	for i, r := range requests {
		if i > 0 {
			args = append(args, "--next")
		}
		args = append(args, "-sS", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n")
		args = append(args, r...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	want := "200 1\n304 0\n206 0\n404 0\n301 0\n200 0\n"
	if string(out) != want {
		t.Fatalf("status and new connections per request:\n%s\nwant:\n%s", out, want)
	}
}

// TestSocketFileShrinks truncates a file while it is being sent: the connection must
// end (curl reports a short transfer) and the server must keep serving.
func TestSocketFileShrinks(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "big.bin")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 64<<20); err != nil { // sparse: quick to make
		t.Fatal(err)
	}
	writeTree(t, root, map[string]string{"small.txt": "ok"})
	h := newHandler(t, Options{Root: root})
	base := startGale(t, h)

	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", "-sS", "--limit-rate", "8M", "-o", out, base+"/big.bin")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("download did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.Truncate(p, 1<<20); err != nil {
		t.Fatal(err)
	}
	truncated := time.Now()
	err := cmd.Wait()
	t.Logf("connection ended %v after the truncation", time.Since(truncated))
	fi, _ := os.Stat(out)
	if err == nil || fi.Size() >= 64<<20 {
		t.Fatalf("curl finished without error after truncation: %v, %d bytes", err, fi.Size())
	}
	head, body := testkit.Curl(t, base+"/small.txt")
	if testkit.StatusOf(head) != "200" || body != "ok" {
		t.Fatalf("server unusable after a shrunk file:\n%s", head)
	}
}

// TestSocketFileChangedBetweenRequests truncates and then extends a file between two
// requests on one keep-alive connection, well within the cache's revalidation
// interval, under the engine GALE_ENGINE selects: each response carries the file's
// current length and bytes, and the connection stays usable.
func TestSocketFileChangedBetweenRequests(t *testing.T) {
	root := t.TempDir()
	v1 := bigContent(1 << 20)
	writeTree(t, root, map[string]string{"f.bin": v1})
	h := newHandler(t, Options{Root: root, OpenFileCache: CacheOptions{Revalidate: time.Hour}})
	base := startGale(t, h)
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	get := func(want string) {
		t.Helper()
		if _, err := io.WriteString(c, "GET /f.bin HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(len(want)) || string(body) != want {
			t.Fatalf("status %d, Content-Length %d, %d bytes read (%v), matches %v; want %d bytes",
				resp.StatusCode, resp.ContentLength, len(body), err, string(body) == want, len(want))
		}
	}
	get(v1)
	p := filepath.Join(root, "f.bin")
	if err := os.Truncate(p, 300_000); err != nil {
		t.Fatal(err)
	}
	get(v1[:300_000])
	v2 := strings.ToUpper(bigContent(2 << 20))
	if err := os.WriteFile(p, []byte(v2), 0o644); err != nil { // in place: same inode
		t.Fatal(err)
	}
	get(v2)
}
