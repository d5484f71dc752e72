package http1

import "testing"

// TestSWARMatchesTables checks the word-at-a-time validators against the byte tables for
// every byte value at every position of a 17-byte input.
func TestSWARMatchesTables(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 17; pos++ {
			b := []byte("abcdefghijklmnopq")
			b[pos] = byte(c)
			if got, want := validValue(b), vcharTab[c]; got != want {
				t.Fatalf("validValue with %#x at %d = %v", c, pos, got)
			}
			if got, want := validTarget(b), targetTab[c]; got != want {
				t.Fatalf("validTarget with %#x at %d = %v", c, pos, got)
			}
		}
	}
}

func TestValidHost(t *testing.T) {
	good := []string{"", "a", "example.com", "example.com:80", "example.com:", "127.0.0.1:8080",
		"[::1]", "[::1]:443", "[fe80::1%25eth0]:1", "xn--bcher-kva.example", "a_b~c!$&'()*+,;="}
	bad := []string{":80", "a b", "a/b", "a@b", "a:b", "a:80:90", "[::1", "[]", "[::1]x", "[::1]:x", "a\x00", "é"}
	for _, h := range good {
		if !ValidHost([]byte(h)) {
			t.Errorf("ValidHost(%q) = false", h)
		}
	}
	for _, h := range bad {
		if ValidHost(h) {
			t.Errorf("ValidHost(%q) = true", h)
		}
	}
}
