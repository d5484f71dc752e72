// Package memtrim gives a serving process's free heap memory back to the kernel once the
// process has gone quiet, so that what an idle connection costs is what it holds.
//
// The Go runtime sizes its heap goal at about twice the live heap (GOGC=100) and returns
// free pages only down to a little above that goal. After a burst (a ramp of thousands
// of WebSocket handshakes, a reload) the process therefore keeps the burst's garbage
// space as resident memory for as long as it stays idle: with 100,000 idle WebSockets of
// about 220 bytes of live state each, that is another 200 bytes per connection of RSS.
// A Trimmer watches the allocation rate and, when a whole period has allocated less than
// Quiet bytes while the resident heap beyond the live heap (garbage not yet collected
// plus free pages not yet returned) exceeds both MinFree and an eighth of the live heap,
// runs debug.FreeOSMemory: a collection plus the return of every free page. The first
// quiet period after a busy one (a ramp of connections, a reload) trims whenever anything
// at all (64 KiB) is beyond the live heap, since the runtime's own scavenger keeps what
// the burst grew. A busy process is never trimmed; a quiet one keeps at most about 1.125
// times its live heap resident (and at least MinFree), at the cost of one collection
// each time an eighth of the live heap has been allocated and dropped (a periodic
// metrics snapshot, say), like GOGC=12 would cost but only while quiet and at most once
// a Period. With 15,000 idle WebSockets (about 6 MB live) and the idle metrics
// publisher's 0.5 MB/s that is a collection about every 1.5 s; a quarter, as before,
// let about 1.5 MB (100 bytes per connection) stay resident between trims.
package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of a Trimmer.
const (
	DefaultPeriod  = time.Second
	DefaultQuiet   = 1 << 20   // 1 MiB allocated in a period still counts as quiet
	DefaultMinFree = 512 << 10 // not worth a collection below 512 KiB of resident free heap
	DefaultDivisor = 8         // and below an eighth of the live heap
)

// burstMinExcess is the least excess resident heap trimmed in the first quiet period
// after a busy one.
const burstMinExcess = 64 << 10

// The runtime/metrics names a Trimmer reads.
const (
	allocsMetric  = "/gc/heap/allocs:bytes"
	freeMetric    = "/memory/classes/heap/free:bytes"    // free, not yet returned to the kernel
	objectsMetric = "/memory/classes/heap/objects:bytes" // live objects and uncollected garbage
	liveMetric    = "/gc/heap/live:bytes"                // marked live by the last collection
)

// Trimmer is the policy; the zero value uses the defaults. Its fields are read by Run's
// goroutine only and must not change while it runs.
type Trimmer struct {
	Period  time.Duration // how often the allocation counter is read
	Quiet   uint64        // most bytes allocated in a period for it to count as quiet
	MinFree uint64        // least excess resident heap worth a trim
	Divisor uint64        // the excess must also reach the live heap divided by Divisor
	// OnTrim, if not nil, is called after each trim with the excess bytes there were.
	OnTrim func(freed uint64)
}

// Run trims as described in the package documentation until ctx is done.
func (t Trimmer) Run(ctx context.Context) {
	period := t.Period
	if period <= 0 {
		period = DefaultPeriod
	}
	quiet, minFree, div := t.Quiet, t.MinFree, t.Divisor
	if quiet == 0 {
		quiet = DefaultQuiet
	}
	if minFree == 0 {
		minFree = DefaultMinFree
	}
	if div == 0 {
		div = DefaultDivisor
	}
	samples := []metrics.Sample{{Name: allocsMetric}, {Name: freeMetric}, {Name: objectsMetric}, {Name: liveMetric}}
	metrics.Read(samples)
	last := samples[0].Value.Uint64()
	afterBurst := false // a busy period was seen and not trimmed after yet
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(samples)
		allocs, live := samples[0].Value.Uint64(), samples[3].Value.Uint64()
		resident := samples[1].Value.Uint64() + samples[2].Value.Uint64()
		busy := allocs-last > quiet
		last = allocs
		if busy {
			afterBurst = true
			continue
		}
		need := max(minFree, live/div)
		if afterBurst {
			need = burstMinExcess
		}
		if resident < live || resident-live < need {
			continue
		}
		debug.FreeOSMemory()
		afterBurst = false
		if t.OnTrim != nil {
			t.OnTrim(resident - live)
		}
	}
}
