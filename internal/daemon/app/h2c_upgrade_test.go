package app

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// upgradeOrigin is a Go HTTP/1.1 origin that records, per request, the Upgrade and
// HTTP2-Settings fields it received.
type upgradeOrigin struct {
	mu   sync.Mutex
	seen []string
}

func (o *upgradeOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.seen = append(o.seen, fmt.Sprintf("upgrade=%q settings=%q conn=%q", r.Header.Get("Upgrade"), r.Header.Get("HTTP2-Settings"), r.Header.Get("Connection")))
	o.mu.Unlock()
	w.Write([]byte("from origin " + r.Proto + "\n"))
}

func startUpgradeOrigin(t *testing.T) (*upgradeOrigin, string) {
	o := &upgradeOrigin{}
	return o, startGoOrigin(t, o)
}

// startGoOrigin serves h with net/http's HTTP/1.1 server on a loopback port until the
// test ends and returns its address.
func startGoOrigin(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// startUpgradeApp serves respond, static and proxy routes over [http1, h2c] with the
// given h2c_upgrade setting ("" leaves the default).
func startUpgradeApp(t *testing.T, upgrade string) (addr string, o *upgradeOrigin) {
	t.Helper()
	o, origin := startUpgradeOrigin(t)
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/small.txt", []byte("small file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	extra := ""
	if upgrade != "" {
		extra = "\n    h2c_upgrade: " + upgrade
	}
	_, addr = startApp(t, `
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]`+extra+`
    routes:
      - match: { path_exact: /hello }
        respond: { status: 200, body: "hello, world\n", headers: { Content-Type: text/plain } }
      - match: { path: /up/ }
        proxy: { upstreams: [`+origin+`] }
      - match: { path: / }
        static: { root: `+dir+` }
`)
	return addr, o
}

// curlVerbose runs curl with args and returns its stdout and its -v trace.
func curlVerbose(t *testing.T, args ...string) (out, trace string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", append([]string{"-sS", "-v"}, args...)...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, e.String())
	}
	return o.String(), e.String()
}

// TestH2CUpgradeCurlAndNghttp: curl --http2 on an http:// URL and nghttp -u send
// "Upgrade: h2c"; gale answers 101 and the response comes over HTTP/2 as stream 1, and
// the connection then carries more HTTP/2 streams. On a proxy route the upgrade is
// refused: the request is served as HTTP/1.1 and the origin sees no Upgrade or
// HTTP2-Settings field.
func TestH2CUpgradeCurlAndNghttp(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed (scripts/test.sh installs it)")
	}
	addr, o := startUpgradeApp(t, "")
	out, trace := curlVerbose(t, "--http2", "-w", "\n%{http_version} %{http_code}", "http://"+addr+"/hello")
	if out != "hello, world\n\n2 200" || !strings.Contains(trace, "< HTTP/1.1 101 Switching Protocols") {
		t.Fatalf("curl --http2 /hello: %q\n%s", out, trace)
	}
	// The 101 carries Date and Server like every other response.
	_, head, _ := strings.Cut(trace, "< HTTP/1.1 101 Switching Protocols")
	head, _, _ = strings.Cut(head, "< HTTP/2 200")
	if !strings.Contains(head, "< Date: ") || !strings.Contains(head, "< Server: gale") {
		t.Fatalf("the 101 lacks Date or Server:\n%s", trace)
	}
	// Two URLs on one connection: the second goes as an HTTP/2 stream (no new 101).
	out, trace = curlVerbose(t, "--http2", "-w", "%{http_version} %{http_code}\n", "http://"+addr+"/small.txt", "http://"+addr+"/hello")
	if out != "small file\n2 200\nhello, world\n2 200\n" || strings.Count(trace, "101 Switching Protocols") != 1 {
		t.Fatalf("curl --http2 two URLs: %q\n%s", out, trace)
	}
	out, trace = curlVerbose(t, "--http2", "-w", "\n%{http_version} %{http_code}", "http://"+addr+"/up/x")
	if out != "from origin HTTP/1.1\n\n1.1 200" || strings.Contains(trace, "101 Switching Protocols") {
		t.Fatalf("curl --http2 through the proxy route: %q\n%s", out, trace)
	}
	o.mu.Lock()
	seen := strings.Join(o.seen, "\n")
	o.mu.Unlock()
	if seen != `upgrade="" settings="" conn=""` {
		t.Fatalf("origin saw %s", seen)
	}

	if _, err := exec.LookPath("nghttp"); err != nil {
		t.Skip("nghttp not installed (nghttp2-client)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, "nghttp", "-uv", "http://"+addr+"/hello").CombinedOutput()
	nout := string(b)
	if err != nil || !strings.Contains(nout, "HTTP Upgrade response") || !strings.Contains(nout, ":status: 200") ||
		!strings.Contains(nout, "hello, world") {
		t.Fatalf("nghttp -u: %v\n%s", err, nout)
	}
}

// TestH2CUpgradeDisabled: with h2c_upgrade: false, curl --http2 gets HTTP/1.1.
func TestH2CUpgradeDisabled(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed (scripts/test.sh installs it)")
	}
	addr, _ := startUpgradeApp(t, "false")
	out, trace := curlVerbose(t, "--http2", "-w", "\n%{http_version} %{http_code}", "http://"+addr+"/hello")
	if out != "hello, world\n\n1.1 200" || strings.Contains(trace, "101 Switching Protocols") {
		t.Fatalf("curl --http2 with upgrades off: %q\n%s", out, trace)
	}
}

// TestH2CUpgradeRefused sends upgrade requests RFC 7540 §3.2 says must not (or need
// not) switch, on raw sockets: each is answered over HTTP/1.1 as if it had no Upgrade
// field, and the connection stays HTTP/1.1 for the next request.
func TestH2CUpgradeRefused(t *testing.T) {
	addr, _ := startUpgradeApp(t, "")
	const good = "AAMAAABkAAQAAP__" // MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 65535
	cases := []struct{ name, head, body string }{
		{"no HTTP2-Settings", "Connection: Upgrade\r\nUpgrade: h2c\r\n", ""},
		{"two HTTP2-Settings", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: " + good + "\r\nHTTP2-Settings: " + good + "\r\n", ""},
		{"HTTP2-Settings not in Connection", "Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: " + good + "\r\n", ""},
		{"not base64url", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: !!!!\r\n", ""},
		{"settings not a multiple of 6", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAA\r\n", ""},
		{"invalid setting value", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAIAAAAC\r\n", ""}, // ENABLE_PUSH 2
		{"request with a body", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: " + good + "\r\nContent-Length: 5\r\n", "abcde"},
		{"upgrade to something else", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2\r\nHTTP2-Settings: " + good + "\r\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testkit.Dial(t, addr)
			br := bufio.NewReader(c)
			fmt.Fprintf(c, "POST /hello HTTP/1.1\r\nHost: x\r\n%s\r\n%s", tc.head, tc.body)
			r := testkit.ReadResponse(t, br, "POST")
			if b := testkit.Body(t, r); r.StatusCode != 200 || r.ProtoMajor != 1 || b != "hello, world\n" {
				t.Fatalf("got %s %d %q", r.Proto, r.StatusCode, b)
			}
			fmt.Fprintf(c, "GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
			r = testkit.ReadResponse(t, br, "GET")
			if b := testkit.Body(t, r); r.StatusCode != 200 || b != "small file\n" {
				t.Fatalf("second request: %d %q", r.StatusCode, b)
			}
		})
	}
}

// TestH2CUpgradeLargeBody: curl --http2 (an h2c upgrade) downloads a 1 MiB file whole.
// Stream 1's DATA used to follow the 101 at once, filling the 64 KiB initial window,
// and curl 7.88, which reads the 101 and what follows it into a 32 KiB buffer before
// it switches to HTTP/2, failed every such download ("connection buffer size is too
// small to store data following HTTP Upgrade response header") with nothing written.
// On epoll and io_uring.
func TestH2CUpgradeLargeBody(t *testing.T) { onLinuxEngines(t, testH2CUpgradeLargeBody) }

func testH2CUpgradeLargeBody(t *testing.T, eng string) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed (scripts/test.sh installs it)")
	}
	dir := t.TempDir()
	body := make([]byte, 1<<20)
	for i := range body {
		body[i] = byte(i*31 + i>>13)
	}
	if err := os.WriteFile(dir+"/large.bin", body, 0o644); err != nil {
		t.Fatal(err)
	}
	_, addr := startApp(t, `
workers: 1
engine: `+eng+`
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2c]
    routes:
      - match: { path: / }
        static: { root: `+dir+` }
`)
	out, trace := curlVerbose(t, "--http2", "-o", dir+"/got.bin", "-w", "%{http_version} %{http_code} %{size_download}", "http://"+addr+"/large.bin")
	got, _ := os.ReadFile(dir + "/got.bin")
	if out != "2 200 1048576" || string(got) != string(body) || !strings.Contains(trace, "101 Switching Protocols") {
		t.Fatalf("curl --http2 /large.bin: %q, %d octets, equal %v\n%s", out, len(got), string(got) == string(body), trace)
	}
}
