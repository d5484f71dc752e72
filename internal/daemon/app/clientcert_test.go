package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/internal/testkit"
)

// clientCertEnv is a TLS server (HTTP/1.1 and h2) with client_ca and the given
// verify_client, proxying to an origin that answers with the client certificate
// fields set_headers sends it.
type clientCertEnv struct {
	addr           string
	serverCA       *testcert.CA
	clientCAFile   string
	valid, foreign testcert.Files // signed by client_ca's CA, by another
	validDN        string
}

func newClientCertEnv(t *testing.T, eng, mode string) *clientCertEnv {
	t.Helper()
	dir, cdir := t.TempDir(), t.TempDir()
	serverCA, _ := testcert.NewCA(dir)
	srv, _ := serverCA.Issue("srv", "localhost", "127.0.0.1")
	clientCA, _ := testcert.NewCA(cdir)
	e := &clientCertEnv{serverCA: serverCA, clientCAFile: clientCA.CAFile, validDN: "CN=client.test"}
	e.valid, _ = clientCA.Issue("client", "client.test")
	e.foreign, _ = serverCA.Issue("other", "other.test")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "verify=%s dn=%s", r.Header.Get("X-Client-Verify"), r.Header.Get("X-Client-DN"))
	}))
	t.Cleanup(origin.Close)
	verify := ""
	if mode != "" {
		verify = "\n      verify_client: " + mode
	}
	_, e.addr = startApp(t, fmt.Sprintf(`
workers: 1
engine: %s
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2]
    tls:
      certificates: [{ cert: %s, key: %s }]
      client_ca: %s%s
    routes:
      - match: { path: /static }
        respond: { body: "served" }
      - proxy:
          upstreams: ["%s"]
          set_headers: { X-Client-Verify: $ssl_client_verify, X-Client-DN: $ssl_client_s_dn }
`, eng, srv.Cert, srv.Key, clientCA.CAFile, verify, origin.Listener.Addr()))
	return e
}

// client returns a Go client presenting f's certificate (none when f is
// empty), over h2 when h2 is set, else HTTP/1.1.
func (e *clientCertEnv) client(t *testing.T, f testcert.Files, h2 bool) *http.Client {
	t.Helper()
	c := &tls.Config{RootCAs: e.serverCA.Pool(), ServerName: "localhost"}
	if f.Cert != "" {
		kp, err := testcert.KeyPair(f)
		if err != nil {
			t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	tr := &http.Transport{TLSClientConfig: c, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestVerifyClientModes: verify_client on, optional and optional_no_ca behave
// as nginx's ssl_verify_client, over HTTP/1.1 and h2 on both engines: every
// handshake completes; a refused client is answered 400 with nginx's text (on:
// no certificate; on and optional: a certificate client_ca does not verify),
// and the others are served with $ssl_client_verify (SUCCESS, NONE or
// FAILED:reason) and $ssl_client_s_dn sent upstream through set_headers,
// replacing what the client sent under those names. Without verify_client,
// client_ca means "on", as it always required a certificate. Before, a client
// without a valid certificate failed its handshake in every mode.
func TestVerifyClientModes(t *testing.T) {
	const noCert, certErr = "400 Bad Request: No required SSL certificate was sent\n", "400 Bad Request: The SSL certificate error\n"
	cases := []struct {
		mode                 string
		none, valid, foreign string // the answer: a 400's status and body, or the origin's body
	}{
		{"on", noCert, "verify=SUCCESS dn=CN=client.test", certErr},
		{"", noCert, "verify=SUCCESS dn=CN=client.test", certErr},
		{"optional", "verify=NONE dn=", "verify=SUCCESS dn=CN=client.test", certErr},
		{"optional_no_ca", "verify=NONE dn=", "verify=SUCCESS dn=CN=client.test", "verify=FAILED:unable to get local issuer certificate dn=CN=other.test"},
		{"off", "verify=NONE dn=", "verify=NONE dn=", "verify=NONE dn="},
	}
	onLinuxEngines(t, func(t *testing.T, eng string) {
		for _, tc := range cases {
			t.Run("mode="+tc.mode, func(t *testing.T) {
				e := newClientCertEnv(t, eng, tc.mode)
				for _, h2 := range []bool{false, true} {
					for name, f := range map[string]testcert.Files{"none": {}, "valid": e.valid, "foreign": e.foreign} {
						want := map[string]string{"none": tc.none, "valid": tc.valid, "foreign": tc.foreign}[name]
						req, _ := http.NewRequest("GET", "https://"+e.addr+"/p", nil)
						req.Header.Set("X-Client-Verify", "SUCCESS") // forged: replaced, never forwarded
						req.Header.Set("X-Client-DN", "CN=admin")
						resp, err := e.client(t, f, h2).Do(req)
						if err != nil {
							t.Fatalf("h2=%v %s certificate: %v", h2, name, err)
						}
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						got := string(b)
						if resp.StatusCode != 200 {
							got = fmt.Sprintf("%d %s", resp.StatusCode, b)
						}
						if got != want {
							t.Errorf("h2=%v %s certificate: got %q, want %q", h2, name, got, want)
						}
						if wantProto := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != wantProto {
							t.Errorf("h2=%v: served over %s", h2, resp.Proto)
						}
					}
				}
			})
		}
	})
}

// TestVerifyClientCurlOpenSSL: with verify_client on, curl without a
// certificate completes its handshake and reads nginx's 400 (HTTP/1.1, then the
// connection is closed, and h2), curl with one gets through, and openssl
// s_client without one completes its handshake.
func TestVerifyClientCurlOpenSSL(t *testing.T) {
	onLinuxEngines(t, func(t *testing.T, eng string) {
		e := newClientCertEnv(t, eng, "on")
		url := "https://localhost:" + e.addr[strings.LastIndexByte(e.addr, ':')+1:] + "/static"
		resolve := "localhost:" + e.addr[strings.LastIndexByte(e.addr, ':')+1:] + ":127.0.0.1"
		for _, proto := range []string{"--http1.1", "--http2"} {
			head, body := testkit.Curl(t, proto, "--cacert", e.serverCA.CAFile, "--resolve", resolve, url)
			if !strings.Contains(testkit.StatusOf(head), "400") || body != "Bad Request: No required SSL certificate was sent\n" {
				t.Errorf("%s without a certificate: %q %q", proto, head, body)
			}
			if proto == "--http1.1" && !strings.EqualFold(testkit.HeadField(head, "Connection"), "close") {
				t.Errorf("the 400 leaves the connection open: %q", head)
			}
			head, body = testkit.Curl(t, proto, "--cacert", e.serverCA.CAFile, "--resolve", resolve, "--cert", e.valid.Cert, "--key", e.valid.Key, url)
			if !strings.Contains(testkit.StatusOf(head), "200") || body != "served" {
				t.Errorf("%s with a certificate: %q %q", proto, head, body)
			}
		}
		out := opensslRequest(t, e.addr, e.serverCA.CAFile, "GET /static HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		if !strings.Contains(out, "400 Bad Request") || !strings.Contains(out, "No required SSL certificate was sent") {
			t.Errorf("openssl s_client without a certificate:\n%s", out)
		}
	})
}

// opensslRequest sends req over openssl s_client (no client certificate) and
// returns what it printed.
func opensslRequest(t *testing.T, addr, caFile, req string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", host+":"+port, "-servername", "localhost", "-CAfile", caFile, "-quiet", "-verify_return_error")
	cmd.Stdin = strings.NewReader(req)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("openssl: %v", err)
	}
	return string(out)
}

// TestVerifyClientRefusalLogged: a request refused for its client certificate
// is in the access log with its 400 (route "none"), over HTTP/1.1 and h2, as
// nginx logs it; it used to be answered before the router attached the
// server's observer, so it left no line.
func TestVerifyClientRefusalLogged(t *testing.T) {
	dir := t.TempDir()
	serverCA, _ := testcert.NewCA(dir)
	srv, _ := serverCA.Issue("srv", "localhost", "127.0.0.1")
	clientCA, _ := testcert.NewCA(t.TempDir())
	path := filepath.Join(dir, "access.log")
	a, addr := runApp(t, fmt.Sprintf(`
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2]
    access_log: { path: %s, format: json }
    tls:
      certificates: [{ cert: %s, key: %s }]
      client_ca: %s
    routes:
      - respond: { body: "served" }
`, path, srv.Cert, srv.Key, clientCA.CAFile))
	e := &clientCertEnv{serverCA: serverCA}
	for _, h2 := range []bool{false, true} {
		resp, err := e.client(t, testcert.Files{}, h2).Get("https://" + addr + "/refused")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("h2=%v: status %d", h2, resp.StatusCode)
		}
	}
	shutdownNow(t, a)
	got := map[string]int{}
	for _, line := range readLines(t, path) {
		var l struct {
			Path, Proto, Route string
			Status             int
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if l.Path == "/refused" && l.Status == 400 {
			got[l.Proto]++
		}
	}
	if got["h1"] != 1 || got["h2"] != 1 {
		t.Fatalf("refused requests logged %v, want one h1 and one h2 line", got)
	}
}

// TestClientCertVariables: every client certificate variable sent with
// set_headers is what nginx would send, compared with openssl's view of the
// certificate: $ssl_client_s_dn and $ssl_client_i_dn (RFC 2253), the serial in
// whole bytes, the SHA-1 fingerprint, and $ssl_client_escaped_cert (the PEM,
// percent-encoded). Over h2 too.
func TestClientCertVariables(t *testing.T) {
	dir := t.TempDir()
	serverCA, _ := testcert.NewCA(dir)
	srv, _ := serverCA.Issue("srv", "localhost", "127.0.0.1")
	clientCA, _ := testcert.NewCA(t.TempDir())
	client, _ := clientCA.Issue("client", "client.test")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"X-S-DN", "X-I-DN", "X-Serial", "X-FP", "X-Cert"} {
			fmt.Fprintf(w, "%s\n", r.Header.Get(h))
		}
	}))
	t.Cleanup(origin.Close)
	_, addr := startApp(t, fmt.Sprintf(`
workers: 1
servers:
  - listen: ["127.0.0.1:0"]
    protocols: [http1, h2]
    tls:
      certificates: [{ cert: %s, key: %s }]
      client_ca: %s
    routes:
      - proxy:
          upstreams: ["%s"]
          set_headers: { X-S-DN: $ssl_client_s_dn, X-I-DN: $ssl_client_i_dn, X-Serial: $ssl_client_serial, X-FP: $ssl_client_fingerprint, X-Cert: $ssl_client_escaped_cert }
`, srv.Cert, srv.Key, clientCA.CAFile, origin.Listener.Addr()))
	openssl := func(args ...string) string {
		out, err := exec.Command("openssl", append([]string{"x509", "-in", client.Cert, "-noout", "-nameopt", "RFC2253"}, args...)...).Output()
		if err != nil {
			t.Fatalf("openssl %v: %v", args, err)
		}
		_, v, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
		return v
	}
	pemBytes, _ := os.ReadFile(client.Cert)
	want := []string{openssl("-subject"), openssl("-issuer"), openssl("-serial"),
		strings.ToLower(strings.ReplaceAll(openssl("-fingerprint", "-sha1"), ":", "")), string(pemBytes)}
	e := &clientCertEnv{serverCA: serverCA}
	for _, h2 := range []bool{false, true} {
		resp, err := e.client(t, client, h2).Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(got) == 5 {
			if cert, err := url.PathUnescape(got[4]); err == nil && !strings.ContainsAny(got[4], "\n/+= ") {
				got[4] = cert
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("h2=%v: got\n%q\nwant\n%q", h2, got, want)
		}
	}
}
