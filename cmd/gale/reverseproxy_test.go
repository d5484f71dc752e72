package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/gale-server/gale/config"
)

func TestReverseProxyFlags(t *testing.T) {
	var cfg *config.Config
	c, stdout, _ := testCLI(captureRun(&cfg, nil))
	if got := c.main([]string{"reverse-proxy", "--from", "127.0.0.1:0", "--to", "127.0.0.1:9001,, localhost:9002"}); got != 0 {
		t.Fatalf("status %d", got)
	}
	p := cfg.Servers[0].Routes[0].Proxy
	if p == nil || len(p.Upstreams) != 2 || p.Upstreams[1].Address != "localhost:9002" ||
		!strings.Contains(stdout.String(), "gale proxying http://127.0.0.1:0/ to 127.0.0.1:9001,localhost:9002") {
		t.Fatalf("built %+v, stdout %q", cfg.Servers[0].Routes[0], stdout)
	}
	c, _, stderr := testCLI(noRun(t))
	if got := c.main([]string{"reverse-proxy", "--from", "127.0.0.1:0", "--to", "example.com:80"}); got != 1 ||
		!strings.Contains(stderr.String(), `gale reverse-proxy: --to: invalid server address "example.com:80"`) {
		t.Fatalf("status %d stderr %q", got, stderr)
	}
	for _, args := range [][]string{{"reverse-proxy"}, {"reverse-proxy", "--to", " , ,"}} {
		c, _, stderr = testCLI(noRun(t))
		if got := c.main(args); got != exitUsage || !strings.Contains(stderr.String(), "--to is required") {
			t.Fatalf("%q: status %d stderr %q", args, got, stderr)
		}
	}
}

func TestReverseProxyCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin saw %s %s xff=%s", r.Method, r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}))
	defer origin.Close()
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	from := ln.Addr().String()
	ln.Close()
	// The origin listens on 127.0.0.1; --to names it localhost, which an inline
	// list takes without resolving (before, it was refused as a host name).
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(origin.URL, "http://"))
	startGale(t, bin, dir, "reverse-proxy", "--from", from, "--to", "localhost:"+port)
	out, err := exec.Command(curl, "-sS", "--max-time", "10", "http://"+from+"/hello", "http://"+from+"/again").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	if want := "origin saw GET /hello xff=127.0.0.1origin saw GET /again xff=127.0.0.1"; string(out) != want {
		t.Fatalf("curl got %q, want %q", out, want)
	}
}
