package l4proto

import (
	"fmt"
	"testing"
)

// outcome is what a reader answered once it stopped asking for more.
type outcome struct {
	val  string // the result, formatted
	n    int
	err  error
	more bool // still asking for more at the end of the input
}

func (o outcome) String() string {
	return fmt.Sprintf("{%s n=%d err=%v more=%v}", o.val, o.n, o.err, o.more)
}

// step runs a reader over a prefix: it reports done (with the outcome) or more.
type step func(prefix []byte) (o outcome, done bool)

// feed delivers in at the given cut points (each cut ends one read) and returns
// the outcome of the first prefix the reader finished on.
func feed(run step, in []byte, cuts []int) outcome {
	for _, k := range append(cuts, len(in)) {
		if o, done := run(in[:k]); done {
			return o
		}
	}
	return outcome{more: true}
}

// allWays checks that in gives the same outcome whole, split at every byte and
// one byte at a time, and returns it.
func allWays(t *testing.T, run step, in []byte) outcome {
	t.Helper()
	return allWaysFresh(t, func() step { return run }, in)
}

// allWaysFresh is allWays for a reader with state: each delivery of in (whole,
// split once, one byte at a time) goes to a fresh step from mk.
func allWaysFresh(t *testing.T, mk func() step, in []byte) outcome {
	t.Helper()
	whole := feed(mk(), in, nil)
	for i := 1; i < len(in); i++ {
		if got := feed(mk(), in, []int{i}); got.String() != whole.String() {
			t.Fatalf("split at %d: got %v, whole %v", i, got, whole)
		}
	}
	every := make([]int, 0, len(in))
	for i := 1; i < len(in); i++ {
		every = append(every, i)
	}
	if got := feed(mk(), in, every); got.String() != whole.String() {
		t.Fatalf("byte at a time: got %v, whole %v", got, whole)
	}
	return whole
}

func proxyStep(p []byte) (outcome, bool) {
	h, n, err := ParseProxy(p)
	if n == 0 && err == nil {
		return outcome{}, false
	}
	return outcome{val: fmt.Sprintf("%+v", h), n: n, err: err}, true
}

func sniStep(p []byte) (outcome, bool) {
	name, done, err := ServerName(p)
	if !done && err == nil {
		return outcome{}, false
	}
	return outcome{val: name, err: err}, true
}

// readerStep returns a step over a fresh HelloReader, which is given every
// prefix in turn as a relay gives it the bytes received so far.
func readerStep() step {
	var r HelloReader
	return func(p []byte) (outcome, bool) {
		name, done, err := r.Read(p)
		if !done && err == nil {
			return outcome{}, false
		}
		return outcome{val: name, err: err}, true
	}
}

// sniAllWays checks in all ways with ServerName on each prefix and with a
// HelloReader fed the prefixes, which must agree, and returns the outcome.
func sniAllWays(t *testing.T, in []byte) outcome {
	t.Helper()
	o := allWays(t, sniStep, in)
	if r := allWaysFresh(t, readerStep, in); r.String() != o.String() {
		t.Fatalf("HelloReader %v, ServerName %v", r, o)
	}
	return o
}
