package wsproto

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// TestAccept checks the worked example of RFC 6455 section 1.3.
func TestAccept(t *testing.T) {
	if got := Accept("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("Accept = %q", got)
	}
}

// TestFrameRoundTrip writes masked and unmasked frames of each length encoding and reads
// them back.
func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536} {
		for _, mask := range []bool{false, true} {
			payload := bytes.Repeat([]byte{'x'}, n)
			wire := AppendFrame(nil, OpBinary, payload, mask)
			f, err := ReadFrame(bufio.NewReader(bytes.NewReader(wire)), make([]byte, 64))
			if err != nil {
				t.Fatalf("n=%d mask=%v: %v", n, mask, err)
			}
			if !f.Fin || f.Opcode != OpBinary || !bytes.Equal(f.Payload, payload) {
				t.Fatalf("n=%d mask=%v: got fin=%v op=%d len=%d", n, mask, f.Fin, f.Opcode, len(f.Payload))
			}
		}
	}
}

// TestReadUpgradeResponse accepts a correct 101 and rejects a wrong accept value.
func TestReadUpgradeResponse(t *testing.T) {
	key := NewKey()
	ok := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		Accept(key) + "\r\n\r\n"
	if err := ReadUpgradeResponse(bufio.NewReader(strings.NewReader(ok)), key); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(ok, Accept(key), Accept("other"), 1)
	if err := ReadUpgradeResponse(bufio.NewReader(strings.NewReader(bad)), key); err == nil {
		t.Fatal("wrong accept value was accepted")
	}
}

func TestDeflateRoundTrip(t *testing.T) {
	d := NewDeflate()
	for _, msg := range []string{"", "a", "hello hello hello hello", strings.Repeat("xyz", 5000)} {
		c := d.Compress([]byte(msg))
		got, err := d.Inflate(nil, c)
		if err != nil || string(got) != msg {
			t.Fatalf("round trip of %d bytes: got %d bytes, %v", len(msg), len(got), err)
		}
	}
}
