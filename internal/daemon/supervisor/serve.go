package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/daemon/app"
	"github.com/gale-server/gale/internal/daemon/memtrim"
	"github.com/gale-server/gale/internal/daemon/shm"
	"github.com/gale-server/gale/internal/os/numa"
	"github.com/gale-server/gale/metrics"
)

// drainPoll is how often a draining process checks whether its last
// connection has closed.
const drainPoll = 50 * time.Millisecond

// serving is one process that runs event loops: a single process or a
// worker child. Its fields are set before run and owned by run's goroutine.
type serving struct {
	cfg       *config.Config
	log       *slog.Logger
	listeners map[string]app.Inherited // sockets to serve instead of binding
	tickets   []byte                   // session ticket secret shared by the workers, or nil
	placement *numa.Placement
	slot      *shm.Slot        // where counters are published; nil without a segment
	seg       *shm.Segment     // the segment slot belongs to; nil without one
	slotIndex int              // slot's index in seg
	ready     *os.File         // readiness pipe; nil when nobody waits
	usr2      <-chan os.Signal // SIGUSR2, and SIGUSR1 (isReopen)
	// onUSR2 answers SIGUSR2 and reports whether the process should now drain
	// and exit: a single process upgrades, a worker drains at once.
	onUSR2 func(ctx context.Context) bool
}

// run serves until ctx is done or a SIGUSR2 ends in draining.
func (s *serving) run(ctx context.Context) error {
	applyScheduling(s.cfg.Scheduling, "", s.log)
	opts := app.Options{Listeners: s.listeners, Placement: s.placement, TicketSecret: s.tickets}
	if s.slot != nil {
		opts.StatsPath, opts.StatsSlot, opts.Workers = s.seg.Path(), s.slotIndex, workerRows(s.seg)
		opts.Started = s.seg.Created() // the instance's start, not this process's
		opts.RefusedReloads = readRefused(s.seg.Path())
	}
	a, err := app.NewWithOptions(s.cfg, s.log, opts)
	if err != nil {
		return err
	}
	a.Start()
	trimCtx, stopTrim := context.WithCancel(context.Background())
	defer stopTrim()
	go memtrim.Trimmer{}.Run(trimCtx) // idle connections cost what they hold (docs/websocket.md)
	for addr, bound := range a.Addrs() {
		s.log.Info("listening", "addr", bound, "configured", addr, "loops", s.cfg.Loops(), "engine", a.Server().Engine().Backend())
	}
	if addr := a.AdminAddr(); addr != "" {
		s.log.Info("admin listening", "addr", addr)
	}
	if s.slot != nil {
		pubCtx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		mdone := make(chan struct{})
		go func() {
			defer close(done)
			shm.NewPublisher(s.slot, counters(a.Server())).Run(pubCtx, publishEvery)
		}()
		go func() {
			defer close(mdone)
			a.Metrics().Run(pubCtx, publishEvery)
		}()
		// Deferred: runs after the shutdown below, so the last values are final.
		defer func() {
			stop()
			<-done
			<-mdone
		}()
	}
	sendReady(&s.ready, s.log)
	reloads, refused := config.Reloads(ctx), config.RefusedReloads(ctx)
	for {
		select {
		case <-ctx.Done():
			return shutdown(a, s.log, s.cfg.Timeouts.ShutdownGrace)
		case err := <-refused:
			a.RecordRefusedReload(err)
		case next := <-reloads:
			if err := a.Reload(next); err != nil {
				s.log.Error("reload failed; the running configuration stays", "err", err)
				continue
			}
			applyScheduling(next.Scheduling, s.cfg.Scheduling, s.log)
			s.cfg = next
			s.log.Info("configuration reloaded")
		case sig := <-s.usr2:
			if isReopen(sig) {
				if err := a.ReopenLogs(); err != nil {
					s.log.Error("reopening access logs failed; they keep writing to the old files", "err", err)
				} else {
					s.log.Info("access logs reopened")
				}
				continue
			}
			if s.onUSR2(ctx) {
				return s.drain(ctx, a)
			}
		}
	}
}

// drain stops accepting and waits, up to upgrade_grace, for the open
// connections to finish; busy ones are closed after their current response
// (Connection: close), idle keep-alive ones at their next request or idle
// timeout. Whatever is left at the end of the grace period is closed. A
// termination signal during the wait ends it with an ordinary shutdown.
func (s *serving) drain(ctx context.Context, a *app.App) error {
	grace := s.cfg.Timeouts.UpgradeGrace
	srv := a.Server()
	srv.StopAccepting()
	s.log.Info("draining: stopped accepting", "connections", srv.Stats().Active, "upgrade_grace", grace)
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for srv.Stats().Active > 0 {
		select {
		case <-ctx.Done():
			return shutdown(a, s.log, s.cfg.Timeouts.ShutdownGrace)
		case <-deadline.C:
			s.log.Info("upgrade grace over; closing the remaining connections", "connections", srv.Stats().Active)
			return shutdown(a, s.log, 0)
		case <-tick.C:
		}
	}
	s.log.Info("drained: every connection finished")
	return shutdown(a, s.log, drainPoll)
}

// shutdown stops a within grace. Connections cut at the end of the grace
// period are logged, not an error of the process.
func shutdown(a *app.App, log *slog.Logger, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	log.Info("shutting down", "grace", grace)
	err := a.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn("grace period over; open connections were closed")
		return nil
	}
	return err
}

// runSingle runs processes: 1: this process opens the sockets, serves them
// and answers SIGUSR2 with an upgrade.
func runSingle(ctx context.Context, cfg *config.Config, log *slog.Logger, e env, usr2 <-chan os.Signal) error {
	socks, err := openSocketsHeld(cfg, e.listeners, e.held, cfg.Loops())
	if err != nil {
		return err
	}
	seg := openStats(cfg, log, e)
	var slot *shm.Slot
	slotIndex := 0
	if seg != nil {
		if i, err := seg.Reserve(os.Getpid(), 0); err == nil {
			slot, slotIndex = seg.Slot(i), i
		} else {
			log.Warn("stats: no slot for this process", "err", err)
		}
	}
	handedOver := false
	defer func() {
		if slot != nil {
			slot.Release()
		}
		closeStats(seg, handedOver)
	}()
	s := &serving{
		cfg: cfg, log: log, listeners: socks, placement: plan(cfg, log, 0, 1),
		slot: slot, seg: seg, slotIndex: slotIndex, ready: e.ready, usr2: usr2,
	}
	s.onUSR2 = func(ctx context.Context) bool {
		statsPath := ""
		if seg != nil {
			statsPath = seg.Path()
		}
		if err := upgrade(ctx, log, socks, heldAddrs(s.cfg, socks), statsPath); err != nil {
			log.Error("upgrade failed; this process keeps serving", "err", err)
			return false
		}
		handedOver = true
		return true
	}
	// The sockets belong to the server from here on: it closes them.
	return s.run(ctx)
}

// runWorker runs worker child e.worker: it serves the sockets its parent
// handed over and drains on SIGUSR2 (its parent is being upgraded).
func runWorker(ctx context.Context, cfg *config.Config, log *slog.Logger, e env, usr2 <-chan os.Signal) error {
	for _, in := range e.listeners {
		for _, fd := range in.FDs {
			closeOnExec(fd)
		}
	}
	var slot *shm.Slot
	var segment *shm.Segment
	if e.statsPath != "" && e.statsSlot >= 0 {
		seg, err := shm.Open(e.statsPath)
		switch {
		case err != nil:
			log.Warn("stats: cannot open the segment", "path", e.statsPath, "err", err)
		case e.statsSlot >= seg.Len():
			log.Warn("stats: slot out of range", "slot", e.statsSlot)
			seg.Close()
		default:
			defer seg.Close()
			slot, segment = seg.Slot(e.statsSlot), seg
			slot.SetOwner(os.Getpid(), e.worker)
		}
	}
	s := &serving{
		cfg: cfg, log: log, listeners: e.listeners, tickets: e.tickets, placement: plan(cfg, log, e.worker, e.processes),
		slot: slot, seg: segment, slotIndex: e.statsSlot, ready: e.ready, usr2: usr2,
		onUSR2: func(context.Context) bool { return true },
	}
	return s.run(ctx)
}

// workerRows lists the segment's slots for /status.json.
func workerRows(seg *shm.Segment) func() []metrics.Worker {
	return func() []metrics.Worker {
		var out []metrics.Worker
		for _, r := range seg.Rows() {
			out = append(out, metrics.Worker{Slot: r.Slot, PID: r.PID, Worker: r.Worker, Live: r.Live,
				Requests: r.Requests, Active: r.Active})
		}
		return out
	}
}
