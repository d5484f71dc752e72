package http1

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// This file holds the drivers that feed a parser the way the engine does: the unconsumed
// bytes of the previous read are copied into a fresh buffer followed by the new bytes, and
// the old buffer is scribbled over, so that a result holding a view into an earlier buffer
// shows up as corrupted output.

// snapRequest renders everything ParseHead reports about a request.
func snapRequest(r *Request, n int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "n=%d method=%q target=%q path=%q norm=%q query=%q host=%q form=%v minor=%d cl=%d",
		n, r.Method, r.Target, r.Path, r.NormPath, r.Query, r.Host, r.Form, r.Minor, r.ContentLength)
	fmt.Fprintf(&sb, " chunked=%v keepalive=%v expect100=%v upgrade=%v close=%v",
		r.Chunked, r.KeepAlive, r.Expect100, r.Upgrade, r.Close)
	for _, h := range r.Headers {
		fmt.Fprintf(&sb, " [%q: %q]", h.Name, h.Value)
	}
	return sb.String()
}

// headOutcome is everything a feeding of some input produced.
type headOutcome struct {
	reqs     []string // snapRequest of each complete head, in order
	status   int      // status of the *Error that ended the input, 0 if none
	reason   string
	leftover int // bytes not consumed at the end (an incomplete head)
}

func (o headOutcome) String() string {
	return fmt.Sprintf("reqs=%q status=%d (%s) leftover=%d", o.reqs, o.status, o.reason, o.leftover)
}

func (o headOutcome) equal(p headOutcome) bool { return o.String() == p.String() }

// newBuf copies old followed by more into a fresh buffer and scribbles over old.
func newBuf(old, more []byte) []byte {
	nb := make([]byte, 0, len(old)+len(more))
	nb = append(append(nb, old...), more...)
	for i := range old {
		old[i] = 0xEE
	}
	return nb
}

// driveHead feeds in to a Parser in pieces ending at cuts (ascending) and then at
// len(in), parsing every complete head as the engine would.
func driveHead(t testing.TB, lim Limits, in []byte, cuts []int) headOutcome {
	t.Helper()
	p := Parser{Limits: lim}
	var req Request
	var out headOutcome
	var buf []byte
	prev := 0
	for _, c := range append(cuts, len(in)) {
		if c <= prev && c != len(in) {
			continue
		}
		buf = newBuf(buf, in[prev:c])
		prev = c
		for len(buf) > 0 {
			n, err := p.ParseHead(buf, &req)
			if errors.Is(err, ErrNeedMore) {
				if n != 0 {
					t.Fatalf("ErrNeedMore with n=%d", n)
				}
				break
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v is not *Error", err)
				}
				if n != 0 {
					t.Fatalf("error with n=%d", n)
				}
				out.status, out.reason = e.Status, e.Reason
				out.leftover = len(buf) + len(in) - prev
				return out
			}
			if n <= 0 || n > len(buf) {
				t.Fatalf("consumed %d of %d", n, len(buf))
			}
			out.reqs = append(out.reqs, snapRequest(&req, n))
			buf = buf[n:]
		}
	}
	out.leftover = len(buf)
	return out
}

// everyByte returns the cuts 1, 2, ..., n-1: feeding one byte at a time.
func everyByte(n int) []int {
	cuts := make([]int, 0, n)
	for k := 1; k < n; k++ {
		cuts = append(cuts, k)
	}
	return cuts
}

// allWays runs drive on an n-byte input fed whole, split in two at every byte (when
// splits is set) and one byte at a time, fails the test if any feeding differs from the
// whole one, and returns the whole outcome.
func allWays[O fmt.Stringer](t testing.TB, n int, splits bool, drive func(cuts []int) O) O {
	t.Helper()
	whole := drive(nil)
	for k := 1; splits && k < n; k++ {
		if got := drive([]int{k}); got.String() != whole.String() {
			t.Fatalf("split at %d:\n got  %v\n want %v", k, got, whole)
		}
	}
	if got := drive(everyByte(n)); got.String() != whole.String() {
		t.Fatalf("byte at a time:\n got  %v\n want %v", got, whole)
	}
	return whole
}

// headAllWays is allWays for request heads.
func headAllWays(t testing.TB, lim Limits, in []byte) headOutcome {
	t.Helper()
	return allWays(t, len(in), true, func(cuts []int) headOutcome { return driveHead(t, lim, in, cuts) })
}

// bodyOutcome is everything a feeding of a body produced.
type bodyOutcome struct {
	data     string
	trailers string
	done     bool
	status   int
	leftover int // bytes after the end of the body, or not consumed when it did not end
}

func (o bodyOutcome) String() string {
	return fmt.Sprintf("data=%q trailers=%s done=%v status=%d leftover=%d",
		o.data, o.trailers, o.done, o.status, o.leftover)
}

// driveBody feeds in to a BodyReader in pieces ending at cuts and then at len(in).
func driveBody(t testing.TB, req *Request, maxBody int64, in []byte, cuts []int) bodyOutcome {
	t.Helper()
	var b BodyReader
	b.Init(req, maxBody)
	var out bodyOutcome
	var data []byte
	var buf []byte
	prev, used := 0, 0
	for _, c := range append(cuts, len(in)) {
		if c <= prev && c != len(in) {
			continue
		}
		buf = newBuf(buf, in[prev:c])
		prev = c
		for {
			d, n, done, err := b.Next(buf)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v is not *Error", err)
				}
				if n != 0 || d != nil {
					t.Fatalf("error with n=%d data=%q", n, d)
				}
				// How much framing was consumed before the error depends on the split
				// (an error returns consumed 0), so leftover is not compared.
				out.status = e.Status
				out.data = string(data)
				out.leftover = -1
				return out
			}
			if n < 0 || n > len(buf) || len(d) > n {
				t.Fatalf("consumed %d of %d with %d data bytes", n, len(buf), len(d))
			}
			data = append(data, d...)
			buf = buf[n:]
			used += n
			if done {
				out.done = true
				out.data = string(data)
				out.trailers = fmt.Sprintf("%q", b.Trailers())
				out.leftover = len(in) - used
				return out
			}
			if n == 0 {
				break
			}
		}
	}
	out.data = string(data)
	out.leftover = len(in) - used
	return out
}

// bodyAllWays is allWays for bodies.
func bodyAllWays(t testing.TB, req *Request, maxBody int64, in []byte) bodyOutcome {
	t.Helper()
	return allWays(t, len(in), true, func(cuts []int) bodyOutcome { return driveBody(t, req, maxBody, in, cuts) })
}
