package wsproto

import (
	"bytes"
	"testing"
)

// TestParseFrame parses masked and unmasked frames of each length encoding whole and
// cut at every byte (ErrShort for every proper prefix).
func TestParseFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 300, 65535, 65536} {
		payload := bytes.Repeat([]byte{'y'}, n)
		for _, wire := range [][]byte{
			AppendFrame(nil, OpText, payload, false),
			AppendMasked(nil, OpText, payload, [4]byte{9, 8, 7, 6}),
		} {
			for cut := range min(len(wire), 300) {
				if _, _, err := ParseFrame(append([]byte(nil), wire[:cut]...)); err != ErrShort {
					t.Fatalf("n=%d cut=%d: err %v, want ErrShort", n, cut, err)
				}
			}
			buf := append(append([]byte(nil), wire...), 0x81) // a byte of the next frame
			f, used, err := ParseFrame(buf)
			if err != nil || used != len(wire) || !f.Fin || f.Opcode != OpText || !bytes.Equal(f.Payload, payload) {
				t.Fatalf("n=%d: used %d of %d, err %v, fin %v op %d len %d", n, used, len(wire), err, f.Fin, f.Opcode, len(f.Payload))
			}
		}
	}
	big := []byte{0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 1}
	if _, _, err := ParseFrame(big); err != ErrTooLarge {
		t.Fatalf("huge length: %v, want ErrTooLarge", err)
	}
}
