package main

import (
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
