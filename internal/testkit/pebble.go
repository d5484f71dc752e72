package testkit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/gale-server/gale/internal/testcert"
)

// Pebble is a running Pebble ACME test CA (Debian's pebble package) whose
// validation authority resolves every name to 127.0.0.1 through a DNS server of
// the test, and validates HTTP-01 on HTTPPort and TLS-ALPN-01 on TLSPort.
type Pebble struct {
	Directory string         // the ACME directory URL
	CAFile    string         // PEM that verifies Directory's HTTPS certificate
	RootCAs   *x509.CertPool // verify Directory's HTTPS certificate
	mgmt      string         // the management listener's host:port
}

// FreePortNumber is FreePort's port alone.
func FreePortNumber(t testing.TB) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(FreePort(t))
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// StartPebble starts Pebble with PEBBLE_VA_NOSLEEP=1, no nonce rejection and no
// authorization reuse, waits for its ACME and management listeners, and stops
// it when the test ends. It skips the test when the pebble binary is missing
// (scripts/test.sh installs it).
func StartPebble(t testing.TB, httpPort, tlsPort int) *Pebble {
	t.Helper()
	bin, err := exec.LookPath("pebble")
	if err != nil {
		t.Skip("pebble not installed (apt-get install pebble; scripts/test.sh does)")
	}
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.Issue("pebble", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	dns := serveDNS(t)
	listen, mgmt := FreePort(t), FreePort(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": f.Cert, "privateKey": f.Key,
		"httpPort": httpPort, "tlsPort": tlsPort,
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
	}}
	b, _ := json.Marshal(conf)
	cfile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-config", cfile, "-dnsserver", dns)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	logf, err := os.Create(filepath.Join(dir, "pebble.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("pebble log:\n%s", b)
		}
	})
	p := &Pebble{Directory: "https://" + listen + "/dir", CAFile: ca.CAFile, RootCAs: ca.Pool(), mgmt: mgmt}
	// Pebble generates its CA keys at start: on a loaded machine that takes
	// longer than WaitFor's limit, so this wait has its own.
	for _, addr := range []string{listen, mgmt} {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pebble did not listen on %s within a minute", addr)
			}
		}
	}
	return p
}

// Roots returns the pool of Pebble's current root certificate, which verifies the
// certificates it issues.
func (p *Pebble) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.RootCAs}}}
	resp, err := cl.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble roots: no certificate in %q", b)
	}
	return pool
}

// serveDNS answers every A question with 127.0.0.1 and every other question
// with no records, over UDP on 127.0.0.1, until the test ends; it returns the
// server's address.
func serveDNS(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out, ok := dnsAnswer(buf[:n]); ok {
				pc.WriteTo(out, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// dnsAnswer builds the response to one DNS query message.
func dnsAnswer(q []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, false
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return nil, false
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	if b.StartQuestions() != nil {
		return nil, false
	}
	for _, x := range qs {
		b.Question(x)
	}
	if b.StartAnswers() != nil {
		return nil, false
	}
	for _, x := range qs {
		if x.Type == dnsmessage.TypeA {
			b.AResource(dnsmessage.ResourceHeader{Name: x.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
