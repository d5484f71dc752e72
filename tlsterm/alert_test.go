package tlsterm

import (
	"crypto/rand"
	"crypto/tls"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestBadRecordGetsAlert: a record that fails authentication after the
// handshake is answered with a bad_record_mac alert before the connection
// closes (it used to close at once, discarding the alert crypto/tls queued).
// TLS 1.2 and 1.3.
func TestBadRecordGetsAlert(t *testing.T) {
	e := startTLS(t, hello, nil)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		raw, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Client(raw, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", MinVersion: v, MaxVersion: v})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		rec := make([]byte, 5+32)
		copy(rec, []byte{0x17, 0x03, 0x03, 0x00, 32})
		rand.Read(rec[5:])
		if _, err := raw.Write(rec); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		var rerr error
		for rerr == nil {
			_, rerr = tc.Read(buf) // a TLS 1.3 session ticket may come first
		}
		if !strings.Contains(rerr.Error(), "bad record MAC") {
			t.Fatalf("%x: after a forged record the client read %v, want a bad_record_mac alert", v, rerr)
		}
	}
}

// TestRenegotiationGetsAlert: a client that asks to renegotiate a TLS 1.2
// connection (openssl s_client's "R" command) gets crypto/tls's fatal
// unexpected_message alert before the close. crypto/tls returns that failure
// as a bare error after queuing the alert, not as a "local error", and the
// connection used to be closed at once with the alert discarded, so the client
// saw an unexpected EOF (nginx answers with a no_renegotiation alert).
func TestRenegotiationGetsAlert(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	e := startTLS(t, hello, nil)
	out := &testkit.SyncBuffer{}
	cmd := exec.Command("openssl", "s_client", "-tls1_2", "-connect", e.addr, "-CAfile", e.ca.CAFile, "-servername", "localhost")
	cmd.Stdout, cmd.Stderr = out, out
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		in.Close()
		cmd.Process.Kill()
		<-done
	}()
	in.Write([]byte("GET /r HTTP/1.1\r\nHost: x\r\n\r\n"))
	testkit.WaitFor(t, "the response before the renegotiation", func() bool { return strings.Contains(out.String(), "hello /r") })
	in.Write([]byte("R\n"))
	select {
	case <-done:
		done <- nil
	case <-time.After(testkit.WaitTimeout):
		t.Fatalf("openssl still runs after asking to renegotiate:\n%s", out)
	}
	if got := out.String(); !strings.Contains(got, "RENEGOTIATING") || !strings.Contains(got, "alert unexpected message") {
		t.Fatalf("after asking to renegotiate, openssl printed no unexpected_message alert:\n%s", got)
	}
}
