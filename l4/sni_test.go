package l4

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// selfSigned returns a certificate for any name (the clients skip verification:
// routing, not trust, is under test).
func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gale test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"*.example", "*.b.example"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsServer is an upstream that terminates TLS and answers "id:servername".
func tlsServer(t *testing.T, cert tls.Certificate, id string) string {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return serve(t, func(c *net.TCPConn) {
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		io.WriteString(tc, id+":"+tc.ConnectionState().ServerName)
		tc.Close()
	})
}

func sniProxy(t *testing.T, withDefault bool) (*Proxy, string) {
	cert := selfSigned(t)
	routes := map[string]Balancer{
		"a.example":   group(tlsServer(t, cert, "A")),
		"*.b.example": group(tlsServer(t, cert, "B")),
	}
	if withDefault {
		routes["default"] = group(tlsServer(t, cert, "C"))
	}
	return startProxy(t, Options{SNI: routes})
}

// checkRoute connects to the SNI proxy at addr asking for name and checks that
// the TLS server reached answers want ("id:servername").
func checkRoute(t *testing.T, addr, name, want string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("%q: %v", name, err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != want {
		t.Fatalf("%q: reached %q, want %q", name, got, want)
	}
}

func TestSNIRouting(t *testing.T) {
	_, addr := sniProxy(t, true)
	for _, tc := range []struct{ name, want string }{
		{"a.example", "A:a.example"},
		{"A.Example", "A:A.Example"}, // matched without case; the stream is passed on unchanged
		{"x.b.example", "B:x.b.example"},
		{"deep.x.b.example", "B:deep.x.b.example"},
		{"b.example", "C:b.example"}, // a wildcard does not match its own base
		{"other.example", "C:other.example"},
		{"", "C:"}, // no server_name extension
	} {
		checkRoute(t, addr, tc.name, tc.want)
	}
}

func TestSNIRejects(t *testing.T) {
	px, addr := sniProxy(t, false)
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "nowhere.example", InsecureSkipVerify: true})
	if err == nil {
		c.Close()
		t.Fatal("a name without a route was relayed")
	}
	plain := dial(t, addr)
	plain.Write([]byte("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"))
	if got, _ := io.ReadAll(plain); len(got) != 0 {
		t.Fatalf("plain text relayed: %q", got)
	}
	huge := dial(t, addr)
	huge.Write([]byte{0x16, 3, 1, 0x40, 0, 1, 0, 0x40, 0x01}) // a 16 KiB+1 ClientHello announced
	if got, _ := io.ReadAll(huge); len(got) != 0 {
		t.Fatalf("oversized hello relayed: %q", got)
	}
	testkit.WaitFor(t, "the rejections to be counted", func() bool {
		s := px.Stats()
		return s.NoRoute == 1 && s.BadHello == 2
	})

}

// TestSNISplitHello sends a ClientHello one byte per write, so that it arrives
// in many reads.
func TestSNISplitHello(t *testing.T) {
	_, addr := sniProxy(t, true)
	c := dial(t, addr)
	tc := tls.Client(&trickle{TCPConn: c}, &tls.Config{ServerName: "x.b.example", InsecureSkipVerify: true})
	got, err := io.ReadAll(tc)
	if string(got) != "B:x.b.example" {
		t.Fatalf("reached %q, %v", got, err)
	}
}

// trickle writes one byte at a time with TCP_NODELAY, pausing briefly so the
// bytes travel in separate segments.
type trickle struct{ *net.TCPConn }

func (t *trickle) Write(p []byte) (int, error) {
	for i := range p {
		if _, err := t.TCPConn.Write(p[i : i+1]); err != nil {
			return i, err
		}
		if i < 64 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	return len(p), nil
}

func TestSNIOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	_, addr := sniProxy(t, true)
	for _, tc := range []struct{ name, want string }{{"x.b.example", "B:x.b.example"}, {"a.example", "A:a.example"}} {
		cmd := exec.Command("openssl", "s_client", "-connect", addr, "-servername", tc.name, "-quiet")
		stdin, _ := cmd.StdinPipe()
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(out) // the upstream answers and closes
		stdin.Close()
		cmd.Wait()
		if !strings.Contains(string(got), tc.want) {
			t.Fatalf("openssl -servername %s got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestSNIRouteKeysNormalized: route keys are compared as ServerName reports a
// hello's name, lower-cased and without a trailing dot, so "a.example." and
// "*.B.example." route (a trailing dot made a key that matched nothing, and
// those hellos went to the default route); only "default" itself is the
// default route ("Default" was taken for it too), any other key a name.
func TestSNIRouteKeysNormalized(t *testing.T) {
	cert := selfSigned(t)
	_, addr := startProxy(t, Options{SNI: map[string]Balancer{
		"a.example.":    group(tlsServer(t, cert, "A")),
		"*.B.example.":  group(tlsServer(t, cert, "B")),
		"Other.example": group(tlsServer(t, cert, "O")),
		"Default":       group(tlsServer(t, cert, "N")),
		"default":       group(tlsServer(t, cert, "C")),
	}})
	for _, tc := range []struct{ name, want string }{
		{"a.example", "A:a.example"},
		{"a.example.", "A:a.example"}, // the Go client drops the dot itself
		{"x.b.example", "B:x.b.example"},
		{"other.example", "O:other.example"},
		{"default", "N:default"},
		{"z.example", "C:z.example"},
	} {
		checkRoute(t, addr, tc.name, tc.want)
	}
}
