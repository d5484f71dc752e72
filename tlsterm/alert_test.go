package tlsterm

import (
	"crypto/rand"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
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
