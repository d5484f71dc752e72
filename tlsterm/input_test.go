package tlsterm

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/server"
)

// fileHandler serves one file with SendFile (read by the FilePump over TLS).
func fileHandler(t *testing.T, path string) server.Handler {
	return server.HandlerFunc(func(c *server.Ctx) {
		f, err := os.Open(path)
		if err != nil {
			c.Error(500, err.Error())
			return
		}
		st, _ := f.Stat()
		c.SetContentLength(st.Size())
		c.SendFile(int(f.Fd()), 0, st.Size(), func() { f.Close() })
		c.End()
	})
}

func TestLargeFileByteExact(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 10<<20)
	rand.Read(data)
	path := filepath.Join(dir, "big")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e := startTLS(t, fileHandler(t, path), nil)
	c := e.client(t)
	for i := 0; i < 2; i++ { // twice on one connection: the pump ends cleanly
		resp, err := c.Get("https://" + e.addr + "/big")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("body differs: %d bytes, want %d", len(got), len(data))
		}
	}
	if st := e.srv.Stats(); st.FileReadBytes < 20<<20 {
		t.Fatalf("FileReadBytes %d: the file did not go through the pump", st.FileReadBytes)
	}
}

// recordSplitter forwards a TLS client's bytes to the server re-framed as
// handshake records of one byte of payload each (a ClientHello split into 1-byte
// records), until the first record that is not a handshake.
type recordSplitter struct {
	net.Conn
	buf  []byte
	done bool
}

func (r *recordSplitter) Write(p []byte) (int, error) {
	if r.done {
		return r.Conn.Write(p)
	}
	r.buf = append(r.buf, p...)
	var out []byte
	for len(r.buf) >= 5 {
		n := int(binary.BigEndian.Uint16(r.buf[3:5]))
		if len(r.buf) < 5+n {
			break
		}
		if r.buf[0] != 22 {
			r.done = true
			out = append(out, r.buf...)
			r.buf = nil
			break
		}
		for _, b := range r.buf[5 : 5+n] {
			out = append(out, 22, r.buf[1], r.buf[2], 0, 1, b)
		}
		r.buf = r.buf[5+n:]
	}
	if _, err := r.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func TestClientHelloInOneByteRecords(t *testing.T) {
	e := startTLS(t, hello, nil)
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	conn := tls.Client(&recordSplitter{Conn: raw}, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"})
	conn.Write([]byte("GET /split HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	b, _ := io.ReadAll(conn)
	if !bytes.Contains(b, []byte("hello /split")) {
		t.Fatalf("response %q", b)
	}
}

func TestGarbageBeforeClientHello(t *testing.T) {
	e := startTLS(t, hello, nil)
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte("\x00\x01garbage\r\n\r\n"))
	// Then a real ClientHello: the connection must not be served as TLS.
	b, _ := io.ReadAll(conn)
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 400")) {
		t.Fatalf("response %q", b)
	}
}

func TestStalledHandshakeTimesOut(t *testing.T) {
	e := startTLS(t, hello, func(_ *server.Server, o *Options) { o.HandshakeTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte{22, 3, 1, 0, 200, 1}) // a ClientHello record header and one byte
	b, err := io.ReadAll(conn)
	if err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v: want a close", b, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.term.Pool().Stats().TimedOut != 1 || e.term.Pool().Stats().Running != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pool stats %+v: want one timeout and no worker left", e.term.Pool().Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSNISelection(t *testing.T) {
	e := startTLS(t, hello, nil)
	for _, tc := range []struct{ sni, want string }{
		{"localhost", "localhost"},
		{"a.example.test", "*.example.test"},
		{"unknown.invalid", "localhost"}, // unknown: the default (first) certificate
		{"", "localhost"},
	} {
		conn, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("%q: %v", tc.sni, err)
		}
		got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
		conn.Close()
		if got != tc.want {
			t.Errorf("SNI %q: certificate %q, want %q", tc.sni, got, tc.want)
		}
	}
}

func TestVersionsAndALPN(t *testing.T) {
	e := startTLS(t, hello, nil)
	_, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10})
	if err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		conn, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", MaxVersion: v, NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatalf("version %x: %v", v, err)
		}
		st := conn.ConnectionState()
		conn.Close()
		if st.Version != v || st.NegotiatedProtocol != "http/1.1" {
			t.Fatalf("version %x alpn %q (no h2 handler: want http/1.1)", st.Version, st.NegotiatedProtocol)
		}
	}
}

func TestCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	e := startTLS(t, hello, nil)
	_, port, _ := net.SplitHostPort(e.addr)
	url := "https://localhost:" + port + "/c"
	out, err := exec.Command("curl", "-sS", "--cacert", e.ca.CAFile, url, url).CombinedOutput()
	if err != nil || string(out) != "hello /chello /c" {
		t.Fatalf("curl: %v: %s", err, out)
	}
}

func TestOpenSSLResumption(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	e := startTLS(t, hello, nil)
	sess := filepath.Join(e.dir, "sess")
	run := func(args ...string) string {
		cmd := exec.Command("openssl", append([]string{"s_client", "-connect", e.addr, "-CAfile", e.ca.CAFile, "-servername", "localhost", "-alpn", "h2,http/1.1"}, args...)...)
		cmd.Stdin = strings.NewReader("GET /o HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl: %v\n%s", err, out)
		}
		return string(out)
	}
	for _, v := range []string{"-tls1_2", "-tls1_3"} {
		first := run(v, "-ign_eof", "-sess_out", sess)
		if !strings.Contains(first, "ALPN protocol: http/1.1") || !strings.Contains(first, "hello /o") || !strings.Contains(first, "Verify return code: 0") {
			t.Fatalf("%s first connection:\n%s", v, first)
		}
		second := run(v, "-ign_eof", "-sess_in", sess)
		if !strings.Contains(second, "Reused,") || !strings.Contains(second, "hello /o") {
			t.Fatalf("%s resumption:\n%s", v, second)
		}
	}
}
