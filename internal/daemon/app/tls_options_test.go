package app

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"golang.org/x/crypto/ocsp"
)

// tlsOptionEnv starts a TLS server with extra lines in its tls section.
func tlsOptionEnv(t *testing.T, extra string) (*testcert.CA, testcert.Files, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ca.Issue("srv", "localhost", "127.0.0.1")
	_, addr := startApp(t, tlsYAML(f, extra))
	return ca, f, addr
}

// handshake dials addr and returns the state or the handshake error (TLS 1.3
// reports a refused client certificate on the first read).
func handshake(addr string, c *tls.Config) (tls.ConnectionState, error) {
	conn, err := tls.Dial("tcp", addr, c)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		return tls.ConnectionState{}, err
	}
	return conn.ConnectionState(), nil
}

// TestTLSClientCA: client_ca alone is verify_client "on": a client without a
// certificate, or with one signed by another CA, completes its handshake and
// is answered 400 (nginx's ssl_verify_client on); one with a valid certificate
// is served and its certificate is in the connection state handlers see.
func TestTLSClientCA(t *testing.T) {
	dir := t.TempDir()
	clientCA, _ := testcert.NewCA(dir)
	client, _ := clientCA.Issue("client", "client.test")
	ca, _, addr := tlsOptionEnv(t, "      client_ca: "+clientCA.CAFile)
	base := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	other, _ := ca.Issue("other", "other.test") // signed by a CA not in client_ca
	for name, f := range map[string]testcert.Files{"none": {}, "valid": client, "foreign": other} {
		c := base.Clone()
		if f.Cert != "" {
			cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
			if err != nil {
				t.Fatal(err)
			}
			c.Certificates = []tls.Certificate{cert}
		}
		conn, err := tls.Dial("tcp", addr, c)
		if err != nil {
			t.Fatalf("%s client certificate: handshake: %v", name, err)
		}
		conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s client certificate: %v", name, err)
		}
		resp.Body.Close()
		conn.Close()
		if want := map[bool]int{true: 200, false: 400}[name == "valid"]; resp.StatusCode != want {
			t.Errorf("%s client certificate: status %d, want %d", name, resp.StatusCode, want)
		}
	}
}

func TestTLSCipherSuites12(t *testing.T) {
	ca, _, addr := tlsOptionEnv(t, "      cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]")
	c := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS12}
	st, err := handshake(addr, c)
	if err != nil || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Fatalf("suite %s, err %v", tls.CipherSuiteName(st.CipherSuite), err)
	}
	c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	if _, err := handshake(addr, c); err == nil {
		t.Fatal("a TLS 1.2 suite outside cipher_suites was accepted")
	}
}

func TestTLSMinVersion13(t *testing.T) {
	ca, _, addr := tlsOptionEnv(t, `      min_version: "1.3"`)
	c := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS12}
	if _, err := handshake(addr, c); err == nil {
		t.Fatal("TLS 1.2 accepted with min_version 1.3")
	}
	c.MaxVersion = 0
	if st, err := handshake(addr, c); err != nil || st.Version != tls.VersionTLS13 {
		t.Fatalf("TLS 1.3: version %x, err %v", st.Version, err)
	}
}

// TestTLSOCSPStaple: the configured response file (a Good response signed by
// the CA) is stapled byte for byte.
func TestTLSOCSPStaple(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.NewCA(dir)
	f, _ := ca.Issue("srv", "localhost", "127.0.0.1")
	staple := filepath.Join(dir, "ocsp.der")
	resp, err := ca.OCSP(f, ocsp.Good, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(staple, resp, 0o644)
	cfg := tlsYAML(f, "")
	cfg = string(bytes.Replace([]byte(cfg), []byte("          key: "+f.Key), []byte("          key: "+f.Key+"\n          ocsp_staple: "+staple), 1))
	_, addr := startApp(t, cfg)
	st, err := handshake(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	if err != nil || !bytes.Equal(st.OCSPResponse, resp) {
		t.Fatalf("stapled %x, want %x; err %v", st.OCSPResponse, resp, err)
	}
}

// TestTLSCurves: curves restricts the key exchange groups: a client that
// offers X25519 first gets P-256 when only that is configured (after a
// HelloRetryRequest), and a client offering none of them is refused.
func TestTLSCurves(t *testing.T) {
	ca, _, addr := tlsOptionEnv(t, "      curves: [p256]")
	c := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
	st, err := handshake(addr, c)
	if err != nil || st.CurveID != tls.CurveP256 {
		t.Fatalf("group %v, err %v, want P-256", st.CurveID, err)
	}
	c.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768, tls.X25519}
	if _, err := handshake(addr, c); err == nil {
		t.Fatal("a client offering none of the configured groups was served")
	}
}
