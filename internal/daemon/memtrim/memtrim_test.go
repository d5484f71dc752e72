package memtrim

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

var sink [][]byte

// TestTrimsOnceWhenQuiet allocates and drops a burst of garbage, then stays quiet: the
// Trimmer must give the free heap back (resident free heap below MinFree afterwards)
// once, and not again while nothing more is dropped.
func TestTrimsOnceWhenQuiet(t *testing.T) {
	for range 64 << 10 {
		sink = append(sink, make([]byte, 1024))
	}
	sink = nil
	runtime.GC() // the burst is now free heap, still resident
	if free := residentFree(); free < 8<<20 {
		t.Skipf("only %d bytes of free heap after the burst; the runtime returned them already", free)
	}
	trims := make(chan uint64, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Trimmer{Period: 20 * time.Millisecond, MinFree: 4 << 20, OnTrim: func(f uint64) { trims <- f }}.Run(ctx)
	select {
	case f := <-trims:
		if f < 4<<20 {
			t.Fatalf("trimmed with %d free bytes, below MinFree", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no trim within 10 s of quiet")
	}
	if free := residentFree(); free >= 4<<20 {
		t.Fatalf("%d bytes of free heap still resident after the trim", free)
	}
	select {
	case f := <-trims:
		t.Fatalf("trimmed again (%d free bytes) with nothing dropped since", f)
	case <-time.After(200 * time.Millisecond):
	}
}

func residentFree() uint64 {
	s := []metrics.Sample{{Name: freeMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestBusyIsNotTrimmed: while more than Quiet bytes are allocated per period, nothing
// is trimmed however much free heap is resident.
func TestBusyIsNotTrimmed(t *testing.T) {
	trims := make(chan uint64, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Trimmer{Period: 20 * time.Millisecond, Quiet: 64 << 10, MinFree: 1, OnTrim: func(f uint64) { trims <- f }}.Run(ctx)
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		for range 256 { // 256 KiB per millisecond or so: far above Quiet per period
			sink = append(sink, make([]byte, 1024))
		}
		sink = sink[:0]
		select {
		case f := <-trims:
			t.Fatalf("trimmed (%d free bytes) while allocating", f)
		default:
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTrimsAfterBurst: the first quiet period after a busy one trims even when the excess
// is below MinFree (here unreachable), and later quiet periods do not.
func TestTrimsAfterBurst(t *testing.T) {
	trims := make(chan uint64, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Trimmer{Period: 20 * time.Millisecond, Quiet: 64 << 10, MinFree: 1 << 40, OnTrim: func(f uint64) { trims <- f }}.Run(ctx)
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) { // busy: well above Quiet per period
		for range 256 {
			sink = append(sink, make([]byte, 1024))
		}
		sink = sink[:0]
		time.Sleep(time.Millisecond)
	}
	sink = nil
	select {
	case <-trims:
	case <-time.After(10 * time.Second):
		t.Fatal("no trim after the burst")
	}
	select {
	case f := <-trims:
		t.Fatalf("trimmed again (%d excess bytes) below MinFree without a new burst", f)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestDivisor: with 32 MiB live, 6 MiB of free heap is beyond an eighth of the live heap
// (the default Divisor trims it) but not beyond a quarter (Divisor 4 keeps it).
func TestDivisor(t *testing.T) {
	live := make([][]byte, 0, 32<<10)
	for range 32 << 10 {
		live = append(live, make([]byte, 1024))
	}
	for _, tc := range []struct {
		div  uint64
		trim bool
	}{{4, false}, {0, true}} {
		debug.FreeOSMemory() // no free heap resident but what follows
		for range 6 << 10 {
			sink = append(sink, make([]byte, 1024))
		}
		sink = nil
		runtime.GC() // the 6 MiB are now free heap, still resident
		if free := residentFree(); free < 5<<20 || free > 7<<20 {
			t.Skipf("%d bytes of free heap after dropping 6 MiB; the runtime returned or kept others", free)
		}
		trims := make(chan uint64, 4)
		ctx, cancel := context.WithCancel(context.Background())
		go Trimmer{Period: 20 * time.Millisecond, MinFree: 64 << 10, Divisor: tc.div, OnTrim: func(f uint64) { trims <- f }}.Run(ctx)
		wait := 300 * time.Millisecond
		if tc.trim {
			wait = 10 * time.Second
		}
		select {
		case f := <-trims:
			if !tc.trim {
				t.Errorf("Divisor %d: trimmed %d excess bytes, below a quarter of the live heap", tc.div, f)
			}
		case <-time.After(wait):
			if tc.trim {
				t.Errorf("Divisor %d: no trim of 6 MiB beyond 32 MiB live", tc.div)
			}
		}
		cancel()
	}
	runtime.KeepAlive(live)
}
