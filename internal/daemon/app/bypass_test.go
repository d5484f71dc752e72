package app

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
)

// rawGet sends one request head exactly as written (the Go client would clean the
// path) on a fresh connection and returns the status.
func rawGet(t *testing.T, addr, head string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", head, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// accessApp serves dir with a deny route on /private/ and on host admin.example.com
// before the static route, the configuration the route-bypass probes attack.
func accessApp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "private"), 0o755)
	os.MkdirAll(filepath.Join(dir, "x"), 0o755)
	os.WriteFile(filepath.Join(dir, "private", "secret.txt"), []byte("secret"), 0o644)
	os.WriteFile(filepath.Join(dir, "public.txt"), []byte("public"), 0o644)
	_, addr := startApp(t, `
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /private/ }
        respond: { status: 403, body: denied }
      - match: { host: admin.example.com }
        respond: { status: 403, body: denied }
      - match: { path_exact: /%70ub }
        respond: { status: 299, body: encoded-config }
      - static: { root: `+dir+` }
`)
	return addr
}

// TestRouteBypassPath sends every spelling of /private/secret.txt we know of: each
// must hit the deny route (403) or be refused (400), never reach the file (200).
func TestRouteBypassPath(t *testing.T) {
	addr := accessApp(t)
	req := func(target string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"
	}
	cases := []struct {
		target string
		status int
	}{
		{"/public.txt", 200},
		{"/private/secret.txt", 403},
		{"/%70rivate/secret.txt", 403},
		{"/%70RIVATE/secret.txt", 404},
		{"/priv%61te/secret.txt", 403},
		{"/priv%61Te/secret.txt", 404},
		{"//private/secret.txt", 403},
		{"///private//secret.txt", 403},
		{"/./private/secret.txt", 403},
		{"/private/./secret.txt", 403},
		{"/private/../private/secret.txt", 403},
		{"/x/../private/secret.txt", 403},
		{"/x/%2E%2E/private/secret.txt", 403},
		{"/x/%2e%2e/private/secret.txt", 403},
		{"/x/.%2e/private/secret.txt", 403},
		{"/%2E/private/secret.txt", 403},
		{"/x/..%2Fprivate/secret.txt", 400},
		{"/x/..%2fprivate/secret.txt", 400},
		{"/private%2Fsecret.txt", 400},
		{"/x/..%5Cprivate/secret.txt", 400},
		{"/x\\..\\private\\secret.txt", 400},
		{"/private/secret.txt%00", 400},
		{"/private/%zz", 400},
		{"/private/%4", 400},
		{"/../private/secret.txt", 400},
		{"/x/../../private/secret.txt", 400},
		{"/private/..;/secret.txt", 400},
		{"/private;/secret.txt", 404},
		{"/private/secret.txt?x=/../", 403},
		{"http://www.example.com/%70rivate/secret.txt", 403},
		{"http://www.example.com//private/secret.txt", 403},
		{"http://www.example.com/x/../private/secret.txt", 403},
		{"/pub", 299},
		{"/%70ub", 299},
	}
	for _, tc := range cases {
		if got := rawGet(t, addr, req(tc.target)); got != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.target, got, tc.status)
		}
	}
}

// TestRouteBypassHost sends admin.example.com in the spellings nginx treats as one
// host, in the Host field and in an absolute-form target (whose authority wins).
func TestRouteBypassHost(t *testing.T) {
	addr := accessApp(t)
	hosts := []string{
		"admin.example.com", "ADMIN.example.COM", "admin.example.com.", "Admin.Example.Com.",
		"admin.example.com:80", "admin.example.com.:8080",
	}
	for _, h := range hosts {
		head := "GET /public.txt HTTP/1.1\r\nHost: " + h + "\r\nConnection: close\r\n\r\n"
		if got := rawGet(t, addr, head); got != 403 {
			t.Errorf("Host %q: %d, want 403", h, got)
		}
		head = "GET http://" + h + "/public.txt HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"
		if got := rawGet(t, addr, head); got != 403 {
			t.Errorf("absolute-form host %q: %d, want 403", h, got)
		}
	}
	for _, h := range []string{"admin.example.com..", "xadmin.example.com", "www.example.com"} {
		head := "GET /public.txt HTTP/1.1\r\nHost: " + h + "\r\nConnection: close\r\n\r\n"
		if got := rawGet(t, addr, head); got == 403 {
			t.Errorf("Host %q: 403, want it not to match admin.example.com", h)
		}
	}
}

// TestOneAddressTwoServers builds configs (in Go, without Validate) that spell one
// address twice or overlap a wildcard: New refuses them instead of letting
// SO_REUSEPORT split connections between two route tables.
func TestOneAddressTwoServers(t *testing.T) {
	for _, pair := range [][2]string{
		{"127.0.0.1:19485", "localhost:19485"},
		{"0.0.0.0:19485", "127.0.0.1:19485"},
		{"[::]:19485", "127.0.0.1:19485"},
		{"127.0.0.1:19485", "[::ffff:127.0.0.1]:19485"},
	} {
		cfg := config.New()
		cfg.Servers = []config.Server{
			{Listen: []string{pair[0]}, Routes: []config.Route{{Respond: &config.Respond{Status: 200}}}},
			{Listen: []string{pair[1]}, Routes: []config.Route{{Respond: &config.Respond{Status: 201}}}},
		}
		if a, err := New(cfg, nil); err == nil {
			a.Shutdown(context.Background())
			t.Errorf("%s and %s: New accepted both", pair[0], pair[1])
		}
	}
}
