//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
)

// TestUpgradeHandsOverTCPAndRedirectSockets: the listening sockets of tcp
// entries and of redirect_http addresses are opened by the top-level process,
// like the servers' ones, so that the workers of processes: 2 share one port
// (port 0 is resolved once) and a binary upgrade hands them to the successor,
// which serves them on the same port without binding anew (a fresh bind would
// take another port 0, and reset what the old socket's accept queue held when
// the old process closed it).
func TestUpgradeHandsOverTCPAndRedirectSockets(t *testing.T) {
	becomeSubreaper(t)
	for _, processes := range []int{1, 2} {
		t.Run(fmt.Sprintf("processes=%d", processes), func(t *testing.T) { testUpgradeHandsOverSockets(t, processes) })
	}
}

func testUpgradeHandsOverSockets(t *testing.T, processes int) {
	bin, next := galeBinary(t)
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("srv", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "origin") }))
	defer origin.Close()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, fmt.Sprintf(`workers: 1
processes: %d
log: { format: json }
timeouts: { shutdown_grace: 5s, upgrade_grace: 5s }
tcp:
  - listen: ["127.0.0.3:0"]
    upstreams: [%q]
servers:
  - listen: ["127.0.0.1:0"]
    tls:
      certificates: [{ cert: %q, key: %q }]
      redirect_http: ["127.0.0.2:0"]
    routes:
      - match: { path: / }
        respond: { status: 200, body: "tls" }
`, processes, origin.Listener.Addr().String(), cert.Cert, cert.Key))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	// One record for each address (the server's, the redirect and the tcp
	// entry) from each serving process, and from a supervising parent.
	listening := 3
	if processes > 1 {
		listening = 3 + 3*processes
	}
	g.waitLog("listening", listening)
	// bound returns the one address every "listening" record from the n-th on
	// gives for the configured address: workers that bound their own sockets
	// would each have a different port.
	bound := func(from int, configured string) string {
		t.Helper()
		got := map[string]bool{}
		for _, r := range g.records("listening")[from:] {
			if c, _ := r["configured"].(string); strings.TrimPrefix(strings.TrimPrefix(c, "tcp/"), "redirect/") == configured {
				got[r["addr"].(string)] = true
			}
		}
		if len(got) != 1 {
			t.Fatalf("%s is listening on %v, want one address:\n%s", configured, got, g.log())
		}
		for a := range got {
			return a
		}
		return ""
	}
	tcpAddr, redirectAddr := bound(0, "127.0.0.3:0"), bound(0, "127.0.0.2:0")
	check := func(when string) {
		t.Helper()
		if got := relay(t, tcpAddr); !strings.HasSuffix(got, "origin") {
			t.Fatalf("%s: the tcp entry on %s answered %q", when, tcpAddr, got)
		}
		if got := relay(t, redirectAddr); !strings.HasPrefix(got, "HTTP/1.1 308 ") {
			t.Fatalf("%s: redirect_http on %s answered %q", when, redirectAddr, got)
		}
	}
	check("before the upgrade")

	before := len(g.records("listening"))
	succ := g.upgrade(bin, next)
	if code := g.wait(15 * time.Second); code != 0 {
		t.Errorf("old process exit status %d", code)
	}
	// The successor serves the sockets it was handed: the same ports.
	if got := bound(before, "127.0.0.3:0"); got != tcpAddr {
		t.Errorf("after the upgrade the tcp entry listens on %s, want the handed-over %s", got, tcpAddr)
	}
	if got := bound(before, "127.0.0.2:0"); got != redirectAddr {
		t.Errorf("after the upgrade redirect_http listens on %s, want the handed-over %s", got, redirectAddr)
	}
	check("after the upgrade")
	stopAdopted(t, succ)
}

// relay sends one HTTP/1.1 request on a new connection to addr and returns the
// whole answer.
func relay(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading from %s: %v", addr, err)
	}
	return string(b)
}

// TestUpgradeAfterReloadAddedAnAddress: an address a reload added is bound by
// the serving processes themselves, so a binary upgrade cannot hand its
// sockets over; the successor binds it anew, and must not take the
// predecessor's sockets there for another process's (it did: every upgrade
// after such a reload failed with "another process listens on it").
func TestUpgradeAfterReloadAddedAnAddress(t *testing.T) {
	becomeSubreaper(t)
	for _, processes := range []int{1, 2} {
		t.Run(fmt.Sprintf("processes=%d", processes), func(t *testing.T) {
			bin, next := galeBinary(t)
			dir := t.TempDir()
			cfgPath := filepath.Join(dir, "gale.yaml")
			writeConfig(t, cfgPath, reloadConfig(processes, "old"))
			g := startGale(t, bin, dir, "serve", "-c", cfgPath)
			l, err := net.Listen("tcp", "127.0.0.2:0")
			if err != nil {
				t.Fatal(err)
			}
			added := l.Addr().String()
			l.Close()
			writeConfig(t, cfgPath, strings.Replace(reloadConfig(processes, "new"), `["127.0.0.1:0"]`, fmt.Sprintf(`["127.0.0.1:0", %q]`, added), 1))
			g.signal(syscall.SIGHUP)
			g.waitLog("configuration reloaded", processes)
			if got := get(t, "http://"+added+"/"); got != "new" {
				t.Fatalf("the added address answered %q", got)
			}
			rename(t, next, bin)
			g.signal(syscall.SIGUSR2)
			deadline := time.Now().Add(30 * time.Second)
			for len(g.records("upgrade: the new process serves")) == 0 {
				if failed := g.records("upgrade failed; this process keeps serving"); len(failed) > 0 || len(g.records("upgrade failed; the workers keep serving")) > 0 || time.Now().After(deadline) {
					t.Fatalf("the upgrade did not serve:\n%s", g.log())
				}
				time.Sleep(5 * time.Millisecond)
			}
			succ := int(g.records("upgrade: the new process serves")[0]["pid"].(float64))
			t.Cleanup(func() { syscall.Kill(succ, syscall.SIGKILL) })
			if code := g.wait(15 * time.Second); code != 0 {
				t.Errorf("old process exit status %d", code)
			}
			if got := get(t, "http://"+added+"/"); got != "new" {
				t.Errorf("after the upgrade the added address answered %q", got)
			}
			stopAdopted(t, succ)
		})
	}
}
