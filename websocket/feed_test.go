package websocket

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// This file holds the driver that feeds a Reader the way a loop does: the unconsumed bytes
// of the previous read are copied into a fresh buffer followed by the new bytes, and the
// old buffer is scribbled over, so that a frame holding a view into an earlier buffer shows
// up as corrupted output.

// frameOutcome is everything reading some input produced.
type frameOutcome struct {
	frames   []string // snapFrame of each frame, in order
	code     uint16   // close code of the error that ended the input, 0 if none
	leftover int      // bytes not consumed at the end (an incomplete frame)
}

func (o frameOutcome) String() string {
	return fmt.Sprintf("frames=%q code=%d leftover=%d", o.frames, o.code, o.leftover)
}

func snapFrame(f Frame) string {
	return fmt.Sprintf("fin=%v op=%d msg=%d comp=%v payload=%q code=%d reason=%q",
		f.Fin, f.Opcode, f.Message, f.Compressed, f.Payload, f.CloseCode, f.CloseReason)
}

// newBuf copies old followed by more into a fresh buffer and scribbles over old.
func newBuf(old, more []byte) []byte {
	nb := make([]byte, 0, len(old)+len(more))
	nb = append(append(nb, old...), more...)
	for i := range old {
		old[i] = 0xEE
	}
	return nb
}

// driveFrames feeds in (copied, so the caller's bytes stay masked) to a copy of proto in
// pieces ending at cuts (ascending) and then at len(in).
func driveFrames(t testing.TB, proto Reader, in []byte, cuts []int) frameOutcome {
	t.Helper()
	r := proto
	var out frameOutcome
	var buf []byte
	prev := 0
	for _, end := range append(cuts, len(in)) {
		buf = newBuf(buf, in[prev:end])
		prev = end
		for {
			f, n, err := r.ReadFrame(buf)
			if errors.Is(err, ErrNeedMore) {
				if n != 0 {
					t.Fatalf("ErrNeedMore with n=%d", n)
				}
				break
			}
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("error %T %v", err, err)
				}
				out.code = pe.Code
				out.leftover = len(buf)
				return out
			}
			if n <= 0 || n > len(buf) {
				t.Fatalf("consumed %d of %d", n, len(buf))
			}
			out.frames = append(out.frames, snapFrame(f))
			buf = buf[n:]
		}
	}
	out.leftover = len(buf)
	return out
}

// allWays feeds in whole, split at every byte and one byte at a time, checks that the
// outcomes agree (the leftover of an error may differ: an error can be found before the
// whole frame has arrived) and returns the whole one.
func allWays(t testing.TB, proto Reader, in []byte) frameOutcome {
	t.Helper()
	whole := driveFrames(t, proto, in, nil)
	same := func(o frameOutcome) bool {
		return fmt.Sprint(o.frames) == fmt.Sprint(whole.frames) && o.code == whole.code &&
			(o.code != 0 || o.leftover == whole.leftover)
	}
	for k := 1; k < len(in); k++ {
		if got := driveFrames(t, proto, in, []int{k}); !same(got) {
			t.Fatalf("split at %d:\n got  %v\n want %v", k, got, whole)
		}
	}
	cuts := make([]int, 0, len(in))
	for k := 1; k < len(in); k++ {
		cuts = append(cuts, k)
	}
	if got := driveFrames(t, proto, in, cuts); !same(got) {
		t.Fatalf("one byte at a time:\n got  %v\n want %v", got, whole)
	}
	return whole
}

// key is the masking key the tests' client frames use.
var key = &[4]byte{0x37, 0xfa, 0x21, 0x3d}

// cf appends a masked (client) frame, sf an unmasked (server) one.
func cf(dst []byte, fin bool, op Opcode, payload string) []byte {
	return AppendFrame(dst, fin, op, false, []byte(payload), key)
}

func sf(dst []byte, fin bool, op Opcode, payload string) []byte {
	return AppendFrame(dst, fin, op, false, []byte(payload), nil)
}

// raw builds a masked frame header by hand: b0 and the 7-bit length field, then the
// payload masked with key.
func raw(b0 byte, payload string) []byte {
	out := []byte{b0, 0x80 | byte(len(payload))}
	out = append(out, key[:]...)
	p := []byte(payload)
	MaskBytes(*key, 0, p)
	return append(out, p...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
