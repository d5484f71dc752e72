package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/gale-server/gale/server"
)

// Process gathers the numbers of one serving process and, through its
// table, those of the other worker processes of the instance.
type Process struct {
	reg    *Registry
	stats  func() server.Stats
	table  *Table // nil when the process is alone (no stats segment)
	stats0 string
	start  time.Time

	mu     sync.Mutex // guards extras
	extras []Extra

	// pubMu makes reading the live numbers and storing them in the table one
	// step, so that the table never goes back to older numbers than a scrape
	// (or an earlier publish) already stored.
	pubMu     sync.Mutex
	tableDone bool // Run has closed the table (guarded by pubMu)
}

// NewProcess returns the process view over reg and stats. statsPath and
// slot name the instance's stats segment and this process's slot in it;
// statsPath "" means the process is alone and reports only itself.
func NewProcess(reg *Registry, stats func() server.Stats, statsPath string, slot, pid int) *Process {
	p := &Process{reg: reg, stats: stats, stats0: statsPath, start: time.Now()}
	if statsPath != "" {
		p.table = OpenTable(TablePath(statsPath, slot), pid)
	}
	return p
}

// Registry returns the process's route counters.
func (p *Process) Registry() *Registry { return p.reg }

// Started returns when the process view was made.
func (p *Process) Started() time.Time { return p.start }

// SetExtras replaces the extra sample sources (after a reload).
func (p *Process) SetExtras(extras ...Extra) {
	p.mu.Lock()
	p.extras = extras
	p.mu.Unlock()
}

// Local returns this process's own samples.
func (p *Process) Local() []Sample {
	p.mu.Lock()
	extras := p.extras
	p.mu.Unlock()
	return Local(p.reg, p.stats(), extras...)
}

// Instance returns the instance's totals: this process's live numbers (plus
// the history its table carries) and every other process's table. procs is
// the number of live processes counted, this one included.
//
// The live numbers are stored in the table before they are answered: a later
// scrape that another process answers reads at least them, so that a counter
// summed over processes never goes back from one scrape to the next (which
// Prometheus would take for a counter reset), whichever process answers each.
func (p *Process) Instance() (t Totals, procs int) {
	t = Totals{}
	if p.table == nil {
		t.Add(p.Local())
		return t, 1
	}
	p.pubMu.Lock()
	local := p.Local()
	if !p.tableDone {
		// A table that cannot be written leaves the others' view as old as its
		// last publish; the answer itself is still right.
		_ = p.table.Publish(local)
	}
	p.pubMu.Unlock()
	t.Add(local)
	for k, v := range p.table.base {
		t[k] += v
	}
	return t, 1 + ReadOthers(p.stats0, p.table.Path(), t)
}

// Publish stores the process's numbers in its table once.
func (p *Process) Publish() error {
	if p.table == nil {
		return nil
	}
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	if p.tableDone {
		return nil
	}
	return p.table.Publish(p.Local())
}

// Run publishes every interval until ctx is done, then once more so that the
// table ends with the final values, and unmaps it.
func (p *Process) Run(ctx context.Context, every time.Duration) {
	if p.table == nil {
		return
	}
	defer func() {
		p.pubMu.Lock()
		p.tableDone = true
		p.table.Close()
		p.pubMu.Unlock()
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p.Publish()
		select {
		case <-ctx.Done():
			p.Publish()
			return
		case <-t.C:
		}
	}
}
