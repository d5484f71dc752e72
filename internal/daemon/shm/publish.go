package shm

import (
	"context"
	"time"
)

// Publisher copies one worker's counters into its slot. The worker's own
// counters start at zero; the slot may already hold the history of workers
// that owned it before, so the publisher adds that history (read once, when
// it is created) to every value it stores. Only Active is not carried over.
type Publisher struct {
	slot *Slot
	base Counters
	read func() Counters
}

// NewPublisher returns a publisher that stores base+read() in slot. read is
// called from the publishing goroutine only and must be safe to call there
// (server.Stats is).
func NewPublisher(slot *Slot, read func() Counters) *Publisher {
	base := slot.Load()
	base.Active = 0
	return &Publisher{slot: slot, base: base, read: read}
}

// Publish stores the current values once.
func (p *Publisher) Publish(now time.Time) {
	p.slot.Store(p.base.Add(p.read()), now)
}

// Run publishes every interval until ctx is done, then once more, so that the
// slot ends with the final values. Each round is a handful of atomic loads
// and stores: the event loops pay nothing for it.
func (p *Publisher) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	p.Publish(time.Now())
	for {
		select {
		case <-ctx.Done():
			p.Publish(time.Now())
			return
		case now := <-t.C:
			p.Publish(now)
		}
	}
}
