package tlsterm

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/server"
)

// env is a running TLS server with a test CA.
type env struct {
	srv   *server.Server
	term  *Terminator
	addr  string
	ca    *testcert.CA
	certs *Certs
	dir   string
}

// hello answers with the SNI-independent path and the protocol.
var hello = server.HandlerFunc(func(c *server.Ctx) {
	c.Respond(200, "text/plain", []byte("hello "+string(c.Request().Path)))
})

func startTLS(t testing.TB, h server.Handler, mod func(*server.Server, *Options)) *env {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	def, err := ca.Issue("default", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	wild, err := ca.Issue("wild", "*.example.test")
	if err != nil {
		t.Fatal(err)
	}
	certs, err := LoadCerts([]CertFiles{{Cert: def.Cert, Key: def.Key}, {Cert: wild.Cert, Key: wild.Key}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Options{Handler: h, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Config: certs.Config()}
	if mod != nil {
		mod(s, &opts)
	}
	l, term, err := Listen(s, "127.0.0.1:0", h, nil, server.Dispatch{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return &env{srv: s, term: term, addr: l.Addr, ca: ca, certs: certs, dir: dir}
}

func (e *env) client(t testing.TB) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func get(t testing.TB, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d", url, resp.StatusCode)
	}
	return string(b)
}

func TestKeepAlive(t *testing.T) {
	e := startTLS(t, hello, nil)
	c := e.client(t)
	for i := 0; i < 20; i++ {
		if got := get(t, c, "https://"+e.addr+"/a"); got != "hello /a" {
			t.Fatalf("got %q", got)
		}
	}
	if n := e.term.Stats().Handshakes; n != 1 {
		t.Fatalf("%d handshakes for 20 keep-alive requests, want 1", n)
	}
}

func TestPipelining(t *testing.T) {
	e := startTLS(t, hello, nil)
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	var req strings.Builder
	const n = 50
	for i := 0; i < n; i++ {
		req.WriteString("GET /p HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	if _, err := conn.Write([]byte(req.String())); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "hello /p" {
			t.Fatalf("response %d: %q", i, b)
		}
	}
}

func TestPlainHTTPToTLSPort(t *testing.T) {
	e := startTLS(t, hello, nil)
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(b), PlainHTTPMessage) || !resp.Close {
		t.Fatalf("status %d close %v body %q", resp.StatusCode, resp.Close, b)
	}
}
