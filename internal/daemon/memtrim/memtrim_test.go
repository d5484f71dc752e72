package memtrim

import (
	"context"
	"runtime"
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
