// Package memtrim gives a serving process's free heap memory back to the kernel once the
// process has gone quiet, so that what an idle connection costs is what it holds.
//
// The Go runtime sizes its heap goal at about twice the live heap (GOGC=100) and returns
// free pages only down to a little above that goal. After a burst (a ramp of thousands
// of WebSocket handshakes, a reload) the process therefore keeps the burst's garbage
// space as resident memory for as long as it stays idle: with 100,000 idle WebSockets of
// about 220 bytes of live state each, that is another 200 bytes per connection of RSS.
// A Trimmer watches the allocation rate and, when a whole period has allocated less than
// Quiet bytes while more than MinFree bytes of free heap are still resident, runs
// debug.FreeOSMemory once: a collection plus the return of every free page. It trims
// again only after the process has allocated more than Quiet bytes since, so a busy
// process is never trimmed and an idle one once per quiet spell.
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
	DefaultQuiet   = 1 << 20 // 1 MiB allocated in a period still counts as quiet
	DefaultMinFree = 4 << 20 // not worth a collection below 4 MiB of resident free heap
)

// The runtime/metrics names a Trimmer reads.
const (
	allocsMetric = "/gc/heap/allocs:bytes"
	freeMetric   = "/memory/classes/heap/free:bytes" // free, not yet returned to the kernel
)

// Trimmer is the policy; the zero value uses the defaults. Its fields are read by Run's
// goroutine only and must not change while it runs.
type Trimmer struct {
	Period  time.Duration // how often the allocation counter is read
	Quiet   uint64        // most bytes allocated in a period for it to count as quiet
	MinFree uint64        // least resident free heap worth a trim
	// OnTrim, if not nil, is called after each trim with the free bytes there were.
	OnTrim func(freed uint64)
}

// Run trims as described in the package documentation until ctx is done.
func (t Trimmer) Run(ctx context.Context) {
	period := t.Period
	if period <= 0 {
		period = DefaultPeriod
	}
	quiet, minFree := t.Quiet, t.MinFree
	if quiet == 0 {
		quiet = DefaultQuiet
	}
	if minFree == 0 {
		minFree = DefaultMinFree
	}
	samples := []metrics.Sample{{Name: allocsMetric}, {Name: freeMetric}}
	metrics.Read(samples)
	last := samples[0].Value.Uint64()
	armed := true // cleared by a trim, set again by an allocation burst
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(samples)
		allocs, free := samples[0].Value.Uint64(), samples[1].Value.Uint64()
		delta := allocs - last
		last = allocs
		if delta > quiet {
			armed = true
			continue
		}
		if !armed || free < minFree {
			continue
		}
		debug.FreeOSMemory()
		armed = false
		if t.OnTrim != nil {
			t.OnTrim(free)
		}
	}
}
