package proxy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// startNginx runs nginx (when installed; scripts/test.sh installs nginx-light) serving
// dir on a free port, logging each request's connection number (then its TLS SNI
// name and whether its session was resumed), and returns its address and the
// access log path. listenExtra's first element is added to the listen
// directive (like "ssl"), the others to the server block.
func startNginx(t *testing.T, dir string, listenExtra ...string) (netip.AddrPort, string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/nginx"); e != nil {
			t.Skip("nginx is not installed")
		}
		bin = "/usr/sbin/nginx"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	logPath := filepath.Join(dir, "access.log")
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  log_format conn "$connection $request_uri $ssl_server_name $ssl_session_reused";
  access_log %[2]s conn;
  keepalive_requests 100000;
  server { listen %[3]s %[4]s; root %[1]s/www; %[5]s }
}
`, dir, logPath, addr, strings.Join(listenExtra[:min(1, len(listenExtra))], ""), strings.Join(listenExtra[min(1, len(listenExtra)):], " "))
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	confPath := filepath.Join(dir, "nginx.conf")
	os.WriteFile(confPath, []byte(conf), 0o644)
	cmd := exec.Command(bin, "-p", dir, "-c", confPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitFor(t, "nginx to listen", func() bool {
		c, err := net.Dial("tcp", addr.String())
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, logPath
}

// fetchMixed writes /big (1 MiB) and /small under dir/www and fetches them n
// times through the proxy at addr, one /big in ten, checking every body.
func fetchMixed(t *testing.T, dir, addr string, n int) {
	t.Helper()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	os.WriteFile(filepath.Join(dir, "www", "big"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "www", "small"), []byte("small\n"), 0o644)
	want := sha256.Sum256(data)
	c := client()
	for i := range n {
		path := "/small"
		if i%10 == 0 {
			path = "/big"
		}
		resp, err := c.Get(fmt.Sprintf("http://%s%s?i=%d", addr, path, i))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || path == "/big" && sha256.Sum256(body) != want || path == "/small" && string(body) != "small\n" {
			t.Fatalf("request %d %s: %d, %d bytes", i, path, resp.StatusCode, len(body))
		}
	}
}

func TestProxyNginxOrigin(t *testing.T) {
	dir := t.TempDir()
	origin, logPath := startNginx(t, dir)
	u := testUpstream(t, []netip.AddrPort{origin}, nil)
	addr := startProxy(t, u, Route{}, nil)
	const n = 100
	fetchMixed(t, dir, addr, n)
	var lines []string
	waitFor(t, "nginx's access log", func() bool {
		raw, _ := os.ReadFile(logPath)
		lines = strings.Split(strings.TrimSpace(string(raw)), "\n")
		return len(lines) == n
	})
	conns := map[string]bool{}
	for _, l := range lines {
		conns[strings.Fields(l)[0]] = true
	}
	if len(conns) != 1 {
		t.Fatalf("nginx saw %d connections for %d sequential keep-alive requests, want 1", len(conns), n)
	}
}
