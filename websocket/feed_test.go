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

// driveFrames feeds in to a copy of proto with ReadFrame in pieces ending at cuts
// (ascending) and then at len(in).
func driveFrames(t testing.TB, proto Reader, in []byte, cuts []int) frameOutcome {
	return drive(t, proto, in, cuts, false)
}

// driveParts is driveFrames with ReadPart: parts are joined back into frames, and no
// more than a header (or a control frame) is ever left unconsumed.
func driveParts(t testing.TB, proto Reader, in []byte, cuts []int) frameOutcome {
	return drive(t, proto, in, cuts, true)
}

func drive(t testing.TB, proto Reader, in []byte, cuts []int, parts bool) frameOutcome {
	t.Helper()
	r := proto
	read := r.ReadFrame
	if parts {
		read = r.ReadPart
	}
	var out frameOutcome
	var buf, joined []byte
	prev := 0
	for _, end := range append(cuts, len(in)) {
		buf = newBuf(buf, in[prev:end])
		prev = end
		for len(buf) > 0 {
			f, n, err := read(buf)
			if errors.Is(err, ErrNeedMore) {
				if n != 0 || parts && len(buf) > 14 && (buf[0]&0x08 == 0 || len(buf) > 2+4+MaxControlPayload) {
					t.Fatalf("ErrNeedMore with n=%d and %d bytes left", n, len(buf))
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
			if n <= 0 && !f.More || n > len(buf) || f.More && !parts {
				t.Fatalf("consumed %d of %d (more %v)", n, len(buf), f.More)
			}
			joined = append(joined, f.Payload...)
			if !f.More {
				f.Payload = joined
				out.frames = append(out.frames, snapFrame(f))
				joined = nil
			}
			buf = buf[n:]
		}
	}
	out.leftover = len(buf)
	return out
}

// allWays feeds in whole, split at every byte and one byte at a time, checks that the
// outcomes agree, with ReadFrame and with ReadPart (the leftover may differ for an error,
// which can be found before the whole frame has arrived, and for ReadPart, which consumes
// partial frames), and returns the whole one.
func allWays(t testing.TB, proto Reader, in []byte) frameOutcome {
	t.Helper()
	whole := driveFrames(t, proto, in, nil)
	same := func(o frameOutcome) bool {
		return fmt.Sprint(o.frames) == fmt.Sprint(whole.frames) && o.code == whole.code
	}
	if got := driveParts(t, proto, in, nil); !same(got) {
		t.Fatalf("parts, whole:\n got  %v\n want %v", got, whole)
	}
	for k := 1; k < len(in); k++ {
		if got := driveFrames(t, proto, in, []int{k}); !same(got) || got.code == 0 && got.leftover != whole.leftover {
			t.Fatalf("split at %d:\n got  %v\n want %v", k, got, whole)
		}
		if got := driveParts(t, proto, in, []int{k}); !same(got) {
			t.Fatalf("parts, split at %d:\n got  %v\n want %v", k, got, whole)
		}
	}
	cuts := make([]int, 0, len(in))
	for k := 1; k < len(in); k++ {
		cuts = append(cuts, k)
	}
	if got := driveFrames(t, proto, in, cuts); !same(got) || got.code == 0 && got.leftover != whole.leftover {
		t.Fatalf("one byte at a time:\n got  %v\n want %v", got, whole)
	}
	if got := driveParts(t, proto, in, cuts); !same(got) {
		t.Fatalf("parts, one byte at a time:\n got  %v\n want %v", got, whole)
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
