package tlsterm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/server"
)

// bothProtos serves HTTP/1.1 and HTTP/2 with one function over the Exchange.
type bothProtos func(x server.Exchange)

func (f bothProtos) ServeGale(c *server.Ctx)         { f(c) }
func (f bothProtos) ServeExchange(x server.Exchange) { f(x) }

// bigBody is the body of /big: 1 MiB that is not a repetition of one block.
var bigBody = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}()

// protoHandler answers /big with bigBody, POST /echo with the request body, and
// anything else with the protocol and the path.
var protoHandler = bothProtos(func(x server.Exchange) {
	switch string(x.Path()) {
	case "/big":
		x.Respond(200, "application/octet-stream", bigBody)
	case "/echo":
		x.ReadBody(func(b []byte) { x.Respond(200, "application/octet-stream", b) })
	default:
		x.Respond(200, "text/plain", []byte(x.Proto()+" "+string(x.Path())))
	}
})

// startH2 serves protoHandler with h2 offered by ALPN.
func startH2(t testing.TB) *env {
	return startTLS(t, protoHandler, func(s *server.Server, o *Options) {
		o.H2 = s.NewHTTP2(server.HTTP2Options{})
	})
}

func TestH2GoClient(t *testing.T) {
	e := startH2(t)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := c.Get("https://" + e.addr + "/first")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.TLS.NegotiatedProtocol != "h2" || string(b) != "HTTP/2.0 /first" {
		t.Fatalf("proto %s, ALPN %q, body %q", resp.Proto, resp.TLS.NegotiatedProtocol, b)
	}
	// Concurrent streams on the one connection: large responses interleave, and a
	// request body travels through the layer.
	post := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16)
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := range 20 {
		wg.Go(func() {
			var resp *http.Response
			var err error
			want := bigBody
			if i%2 == 0 {
				resp, err = c.Get("https://" + e.addr + "/big")
			} else {
				resp, err = c.Post("https://"+e.addr+"/echo", "application/octet-stream", bytes.NewReader(post))
				want = post
			}
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || resp.ProtoMajor != 2 || !bytes.Equal(got, want) {
				errs <- resp.Proto + ": body differs or failed: " + errString(err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
	if n := e.term.Stats().Handshakes; n != 1 {
		t.Fatalf("%d handshakes, want 1 (every request on one h2 connection)", n)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestH2NotOffered: without an h2 handler ALPN selects http/1.1 even for a client
// that prefers h2.
func TestH2NotOffered(t *testing.T) {
	e := startTLS(t, protoHandler, nil)
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Fatalf("ALPN chose %q, want http/1.1", p)
	}
}

// TestH2PrefaceInCleartextToTLSPort: a cleartext HTTP/2 preface on a TLS port is
// not served as HTTP/2 (the h2 handler is only reached through ALPN): HTTP/1
// answers it (505 for the version) instead of a SETTINGS frame.
func TestH2PrefaceInCleartextToTLSPort(t *testing.T) {
	e := startH2(t)
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 505") {
		t.Fatalf("got %q, want an HTTP/1.1 505", line)
	}
}

func TestH2Curl(t *testing.T) {
	e := startH2(t)
	head, body := testkit.Curl(t, "--http2", "--cacert", e.ca.CAFile, "https://"+e.addr+"/curl")
	if !strings.HasPrefix(head, "HTTP/2 200") || body != "HTTP/2.0 /curl" {
		t.Fatalf("head %q body %q", head, body)
	}
	_, body = testkit.Curl(t, "--http2", "--cacert", e.ca.CAFile, "https://"+e.addr+"/big")
	if body != string(bigBody) {
		t.Fatalf("/big: %d bytes differ from the file", len(body))
	}
}

func TestH2Nghttp(t *testing.T) {
	if _, err := exec.LookPath("nghttp"); err != nil {
		t.Skip("nghttp not installed (apt-get install nghttp2-client)")
	}
	e := startH2(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Ten concurrent streams; nghttp fails unless ALPN selected h2.
	out, err := exec.CommandContext(ctx, "nghttp", "-n", "-s", "-m", "10", "https://"+e.addr+"/big").CombinedOutput()
	if err != nil {
		t.Fatalf("nghttp: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "/big"); n < 10 {
		t.Fatalf("nghttp reported %d of 10 streams:\n%s", n, out)
	}
	out, err = exec.CommandContext(ctx, "nghttp", "https://"+e.addr+"/n").Output()
	if err != nil || string(out) != "HTTP/2.0 /n" {
		t.Fatalf("nghttp: %v, %q", err, out)
	}
}

// TestH2NotOnProhibitedSuite: a TLS 1.2 handshake that can only end with a suite RFC
// 9113 Appendix A prohibits (here the server allows CBC beside GCM and the client
// offers CBC alone) selects http/1.1 even though the client prefers h2, and is
// served; one that can use GCM, and TLS 1.3, select h2 (RFC 9113 §9.2.2). Before,
// h2 was selected over CBC, which browsers fail with INADEQUATE_SECURITY.
func TestH2NotOnProhibitedSuite(t *testing.T) {
	cbc, gcm := tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
	rsaGCM := tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 // allowed by HTTP/2, unusable with the ECDSA certificate
	e := startTLS(t, protoHandler, func(s *server.Server, o *Options) {
		o.H2 = s.NewHTTP2(server.HTTP2Options{})
		o.Config.CipherSuites = []uint16{cbc, gcm, rsaGCM}
	})
	for _, tc := range []struct {
		name   string
		max    uint16
		suites []uint16
		want   string
	}{
		{"tls12-cbc", tls.VersionTLS12, []uint16{cbc}, "http/1.1"},
		{"tls12-cbc-rsa-gcm", tls.VersionTLS12, []uint16{rsaGCM, cbc}, "http/1.1"},
		{"tls12-gcm", tls.VersionTLS12, []uint16{cbc, gcm}, "h2"},
		{"tls13", tls.VersionTLS13, []uint16{cbc}, "h2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost",
				MaxVersion: tc.max, CipherSuites: tc.suites, NextProtos: []string{"h2", "http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			st := conn.ConnectionState()
			if st.NegotiatedProtocol != tc.want {
				t.Fatalf("ALPN chose %q with %s, want %q", st.NegotiatedProtocol, tls.CipherSuiteName(st.CipherSuite), tc.want)
			}
			if tc.want != "http/1.1" {
				return
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(conn, "GET /cbc HTTP/1.1\r\nHost: localhost\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 100))
			if resp.StatusCode != 200 || string(b) != "HTTP/1.1 /cbc" {
				t.Fatalf("over CBC: %d %q", resp.StatusCode, b)
			}
		})
	}
}

// TestALPNHTTP10: a client whose ALPN offer is "http/1.0" alone (curl --http1.0 sends
// that) is served HTTP/1.0, with and without h2 offered, as nginx serves it; crypto/tls
// used to fail the handshake with no_application_protocol, since gale offered only h2
// and http/1.1.
func TestALPNHTTP10(t *testing.T) {
	for name, e := range map[string]*env{"http1": startTLS(t, protoHandler, nil), "h2": startH2(t)} {
		t.Run(name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.0"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.0" {
				t.Fatalf("ALPN chose %q, want http/1.0", p)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(conn, "GET /ten HTTP/1.0\r\nHost: localhost\r\n\r\n")
			b, _ := io.ReadAll(conn)
			if !bytes.HasPrefix(b, []byte("HTTP/1.1 200 ")) || !bytes.HasSuffix(b, []byte("HTTP/1.0 /ten")) {
				t.Fatalf("answer %q", b)
			}
			if _, err := exec.LookPath("curl"); err != nil {
				return
			}
			out, err := exec.Command("curl", "-sS", "--max-time", "10", "--http1.0", "--cacert", e.ca.CAFile,
				"--resolve", "localhost:"+e.addr[strings.LastIndexByte(e.addr, ':')+1:]+":127.0.0.1",
				"https://localhost:"+e.addr[strings.LastIndexByte(e.addr, ':')+1:]+"/curl").CombinedOutput()
			if err != nil || string(out) != "HTTP/1.0 /curl" {
				t.Fatalf("curl --http1.0: %q, %v", out, err)
			}
		})
	}
}
