package app

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/internal/testkit"
)

// TestTCPGroupHealthChecks: a tcp entry naming a group with a health check
// runs the checks (send/expect) from the configuration: the group shows in the
// admin API as tcp:db, a backend that stops answering the expected bytes goes
// down, and relays then all go to the other backend.
func TestTCPGroupHealthChecks(t *testing.T) {
	healthy := map[string]bool{"a": true, "b": true}
	var mu sync.Mutex // guards healthy
	backend := func(name string) string {
		return testkit.Serve(t, func(c *net.TCPConn) {
			buf := make([]byte, 6)
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if string(buf) == "PING\r\n" { // a check
				mu.Lock()
				ok := healthy[name]
				mu.Unlock()
				if ok {
					c.Write([]byte("+PONG\r\n"))
				} else {
					c.Write([]byte("-LOADING\r\n"))
				}
				return
			}
			c.Write([]byte(name)) // a relayed client
		})
	}
	a, b := backend("a"), backend("b")
	app, _ := startApp(t, fmt.Sprintf(`workers: 1
admin: { listen: "127.0.0.1:0" }
upstreams:
  db:
    servers: [%q, %q]
    health_check: { type: tcp, interval: 50ms, timeout: 50ms, rise: 1, fall: 2, tcp: { send: "PING\r\n", expect: "+PONG" } }
tcp:
  - listen: ["127.0.0.1:0"]
    upstream: db
`, a, b))
	addr := app.tcpAddrs["127.0.0.1:0"]
	status := func() health.GroupStatus {
		_, body := adminDo(t, "GET", "http://"+app.AdminAddr()+"/upstreams/tcp:db", "")
		var st health.GroupStatus
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("admin API: %v in %s", err, body)
		}
		return st
	}
	testkit.WaitFor(t, "checks of both servers", func() bool {
		st := status()
		return len(st.Servers) == 2 && st.Servers[0].ChecksOK > 0 && st.Servers[1].ChecksOK > 0
	})
	mu.Lock()
	healthy["a"] = false
	mu.Unlock()
	testkit.WaitFor(t, "a down", func() bool { return status().Servers[0].Down })
	for i := range 6 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("client"))
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != "b" {
			t.Fatalf("relay %d with a down: %q; want b", i, got)
		}
	}
	if st := status().Servers[0]; st.Requests != 0 || st.LastCheck != "connection closed before the expected bytes" {
		t.Fatalf("a: %+v; want no relay and the check's reason", st)
	}
}

// TestTCPGroupTLSChecks: a tcp group of https:// servers (TLS passthrough
// backends: the relay passes the client's TLS through) is checked through
// TLS, verified with the group's tls section: a server that accepts but does
// not speak TLS goes down, the TLS one stays up, and relays reach it.
func TestTCPGroupTLSChecks(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.Issue("db", "db.gale.test")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv := &tls.Config{Certificates: []tls.Certificate{kp}}
	tlsAddr := testkit.Serve(t, func(c *net.TCPConn) { tls.Server(c, srv).Write([]byte("tls-ok")) })
	plain := testkit.Serve(t, func(c *net.TCPConn) { c.Write([]byte("not tls\n")); io.Copy(io.Discard, c) })
	app, _ := startApp(t, fmt.Sprintf(`workers: 1
admin: { listen: "127.0.0.1:0" }
upstreams:
  db:
    servers: ["https://%s", "https://%s"]
    tls: { ca: %s, server_name: db.gale.test }
    health_check: { type: tcp, interval: 300ms, timeout: 300ms, rise: 1, fall: 3 }
tcp:
  - listen: ["127.0.0.1:0"]
    upstream: db
`, tlsAddr, plain, ca.CAFile))
	var st health.GroupStatus
	testkit.WaitFor(t, "the plain server down and the TLS one checked", func() bool {
		_, body := adminDo(t, "GET", "http://"+app.AdminAddr()+"/upstreams/tcp:db", "")
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("admin API: %v in %s", err, body)
		}
		return st.Servers[1].Down && st.Servers[0].ChecksOK > 0
	})
	if st.Servers[0].Down { // (a handshake may time out on a loaded machine: fall 3)
		t.Fatalf("the TLS server: %+v", st.Servers[0])
	}
	for range 3 {
		c, err := tls.Dial("tcp", app.tcpAddrs["127.0.0.1:0"], &tls.Config{ServerName: "db.gale.test", RootCAs: ca.Pool()})
		if err != nil {
			t.Fatalf("TLS through the relay: %v", err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != "tls-ok" {
			t.Fatalf("through the relay: %q", got)
		}
	}
}
