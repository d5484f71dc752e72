//go:build unix

package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/daemon/shm"
	"github.com/gale-server/gale/metrics"
)

// stopMargin is how long a stopping parent waits beyond shutdown_grace (or
// upgrade_grace) before it kills workers that are still running.
const stopMargin = 5 * time.Second

// parent supervises worker processes. Every field is owned by the goroutine
// running run, except the channels, which worker goroutines send on.
type parent struct {
	cfg   *config.Config // the configuration in force (updated by reloads)
	log   *slog.Logger
	exe   string   // how to start a worker: the running binary
	args  []string // its arguments, args[0] included
	socks sockets
	// tickets is the session ticket secret every worker gets (generated once, so
	// that restarted workers resume the others' sessions).
	tickets []byte
	seg     *shm.Segment // nil without a stats segment
	// configCopy is the file beside seg that holds the text of the last
	// configuration reloaded, for the workers' SIGHUP (envConfigPath); ""
	// without a segment, and then workers read the file itself.
	configCopy string
	// refused are the reloads refused as invalid, listed beside seg for the
	// workers' /status.json (recordRefused).
	refused []metrics.Reload
	ready   *os.File // readiness pipe to a predecessor; nil when none waits
	usr2    <-chan os.Signal
	// upgrade starts a successor; replaced in tests.
	upgrade func(ctx context.Context) error

	workers  []*worker
	exits    chan exitEvent
	readies  chan int // worker index whose current process said it serves
	restarts chan int // worker index whose backoff delay is over
	quit     chan struct{}
}

// worker is one worker slot of the parent: the process currently filling it
// and its restart history.
type worker struct {
	index   int
	slot    int // stats slot, -1 without a segment
	cmd     *exec.Cmd
	started time.Time
	running bool
	ready   bool // the current process said it serves
	back    backoff
	pending bool // a restart is scheduled
	// reload is set when a reload was forwarded while the current process was
	// starting: SIGHUP would have killed it before it installed its handler
	// (the default action), so it gets the signal once it serves.
	reload bool
}

type exitEvent struct {
	index int
	cmd   *exec.Cmd
	err   error
}

// runParent runs processes: N > 1.
func runParent(ctx context.Context, cfg *config.Config, log *slog.Logger, e env, usr2 <-chan os.Signal) error {
	n := cfg.Processes
	socks, err := openSocketsHeld(cfg, e.listeners, e.held, n*cfg.Loops())
	if err != nil {
		return err
	}
	tickets, err := newTicketSecret()
	if err != nil {
		socks.close()
		return err
	}
	p := &parent{
		cfg: cfg, log: log, exe: "/proc/self/exe", args: os.Args, socks: socks, tickets: tickets,
		seg: openStats(cfg, log, e), ready: e.ready, usr2: usr2,
	}
	if p.seg != nil {
		p.configCopy = p.seg.Path() + configSuffix
		os.Remove(p.configCopy) // a killed predecessor's
		os.Remove(p.seg.Path() + refusedSuffix)
	}
	p.upgrade = func(ctx context.Context) error {
		path := ""
		if p.seg != nil {
			path = p.seg.Path()
		}
		return upgrade(ctx, log, p.socks, heldAddrs(p.cfg, p.socks), path)
	}
	logTopology(cfg, log)
	for _, addr := range sortedAddrs(socks) {
		log.Info("listening", "addr", socks[addr].Addr, "configured", addr, "processes", n, "sockets", len(socks[addr].FDs))
	}
	return p.run(ctx, n)
}

// run starts n workers and supervises them until they are all gone after a
// stop (ctx done) or an upgrade.
func (p *parent) run(ctx context.Context, n int) error {
	p.exits = make(chan exitEvent, n)
	p.readies = make(chan int, n)
	p.restarts = make(chan int, n)
	p.quit = make(chan struct{})
	defer close(p.quit)
	handedOver := false
	defer func() {
		p.socks.close()
		if p.seg != nil {
			for _, w := range p.workers {
				if w.slot >= 0 {
					p.seg.Slot(w.slot).Release()
				}
			}
		}
		closeStats(p.seg, handedOver)
	}()
	for i := 0; i < n; i++ {
		w := &worker{index: i, slot: -1, back: defaultBackoff()}
		if p.seg != nil {
			if s, err := p.seg.Reserve(os.Getpid(), i); err == nil {
				w.slot = s
			} else {
				p.log.Warn("stats: no slot for worker", "worker", i, "err", err)
			}
		}
		p.workers = append(p.workers, w)
	}
	for _, w := range p.workers { // every worker exists: shares are computed over n
		p.start(w)
	}
	done := ctx.Done()
	reloads, refused := config.Reloads(ctx), config.RefusedReloads(ctx)
	stopping, retiring := false, false
	var kill <-chan time.Time
	for !(stopping || retiring) || p.running() > 0 {
		select {
		case <-done:
			done = nil
			stopping = true
			p.log.Info("stopping workers", "grace", p.cfg.Timeouts.ShutdownGrace)
			p.signalAll(syscall.SIGTERM)
			kill = time.After(p.cfg.Timeouts.ShutdownGrace + stopMargin)
		case <-kill:
			p.log.Warn("workers still running after the grace period; killing them")
			p.signalAll(syscall.SIGKILL)
		case ev := <-p.exits:
			p.exited(ev, stopping || retiring)
		case i := <-p.readies:
			w := p.workers[i]
			w.ready = true
			if w.reload {
				w.reload = false
				w.cmd.Process.Signal(syscall.SIGHUP)
			}
			if p.ready != nil && p.allReady() {
				p.log.Info("every worker serves")
				sendReady(&p.ready, p.log)
			}
		case i := <-p.restarts:
			w := p.workers[i]
			w.pending = false
			if !stopping && !retiring && !w.running {
				p.start(w)
			}
		case next := <-reloads:
			p.reload(next)
		case err := <-refused:
			p.recordRefused(err)
		case sig := <-p.usr2:
			if isReopen(sig) {
				p.log.Info("reopening access logs: forwarding SIGUSR1 to the workers")
				p.signalAll(syscall.SIGUSR1)
				continue
			}
			if stopping || retiring {
				continue
			}
			if err := p.upgrade(ctx); err != nil {
				p.log.Error("upgrade failed; the workers keep serving", "err", err)
				continue
			}
			retiring, handedOver = true, true
			p.log.Info("upgrade: the new processes serve; draining the workers", "upgrade_grace", p.cfg.Timeouts.UpgradeGrace)
			p.signalAll(syscall.SIGUSR2)
			kill = time.After(p.cfg.Timeouts.UpgradeGrace + stopMargin)
		}
	}
	p.log.Info("every worker has exited")
	return nil
}

// start launches the process of worker w with its share of the sockets.
func (p *parent) start(w *worker) {
	w.started = time.Now()
	part := p.socks.share(w.index, len(p.workers))
	extra, err := files(part)
	if err != nil {
		p.log.Error("cannot pass sockets to a worker", "worker", w.index, "err", err)
		p.exited(exitEvent{index: w.index, err: err}, false)
		return
	}
	envs := []string{
		envWorker + "=" + strconv.Itoa(w.index),
		envProcesses + "=" + strconv.Itoa(len(p.workers)),
		envListen + "=" + formatListen(part, 4),
	}
	// Descriptors that carry secrets and text, after the readiness pipe (3)
	// and the sockets (4 on).
	type handoff struct {
		what string
		open func(fd int) (*os.File, string, error)
	}
	var handoffs []handoff
	if len(p.tickets) > 0 {
		handoffs = append(handoffs, handoff{"the ticket secret", func(fd int) (*os.File, string, error) { return ticketPipe(p.tickets, fd) }})
	}
	if text := p.cfg.Text(); text != nil {
		handoffs = append(handoffs, handoff{"the configuration", func(fd int) (*os.File, string, error) { return configFile(text, fd) }})
	}
	if p.configCopy != "" {
		envs = append(envs, envConfigPath+"="+p.configCopy)
	}
	for _, h := range handoffs {
		f, env, err := h.open(4 + len(extra))
		if err != nil {
			closeFiles(extra)
			p.log.Error("cannot pass "+h.what+" to a worker", "worker", w.index, "err", err)
			p.exited(exitEvent{index: w.index, err: err}, false)
			return
		}
		extra, envs = append(extra, f), append(envs, env)
	}
	if w.slot >= 0 {
		envs = append(envs, fmt.Sprintf("%s=%d|%s", envStats, w.slot, p.seg.Path()))
	}
	cmd, ready, err := startWithReady(p.exe, p.args, envs, extra, func(c *exec.Cmd) {
		c.SysProcAttr = workerAttr()
	})
	closeFiles(extra)
	if err != nil {
		p.log.Error("cannot start a worker", "worker", w.index, "err", err)
		p.exited(exitEvent{index: w.index, err: err}, false)
		return
	}
	w.cmd, w.running, w.ready, w.reload = cmd, true, false, false
	addChild(cmd.Process)
	p.log.Info("worker started", "worker", w.index, "pid", cmd.Process.Pid)
	go func() {
		if <-ready == nil {
			select {
			case p.readies <- w.index:
			case <-p.quit:
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		removeChild(cmd.Process)
		select {
		case p.exits <- exitEvent{index: w.index, cmd: cmd, err: err}:
		case <-p.quit:
		}
	}()
}

// exited records the end of a worker process and, unless the parent is
// stopping, schedules its restart after the backoff delay.
func (p *parent) exited(ev exitEvent, stopping bool) {
	w := p.workers[ev.index]
	if ev.cmd != nil && ev.cmd != w.cmd {
		return // an earlier process of this worker; already handled
	}
	w.running, w.ready = false, false
	if w.slot >= 0 {
		p.seg.Slot(w.slot).SetOwner(os.Getpid(), w.index)
	}
	var status string
	if ev.cmd != nil {
		status = describeExit(ev.cmd.ProcessState, ev.err)
	} else {
		status = ev.err.Error()
	}
	if stopping {
		p.log.Info("worker exited", "worker", w.index, "status", status)
		return
	}
	uptime := time.Since(w.started)
	delay := w.back.next(uptime)
	p.log.Error("worker died; restarting", "worker", w.index, "status", status, "uptime", uptime.Round(time.Millisecond), "delay", delay)
	w.pending = true
	time.AfterFunc(delay, func() {
		select {
		case p.restarts <- w.index:
		case <-p.quit:
		}
	})
}

// reload forwards a validated configuration to the workers as SIGHUP: each
// reads the file again and applies it; one still starting gets the signal
// once it serves. Settings that shape the processes themselves need a
// restart or an upgrade.
func (p *parent) reload(next *config.Config) {
	if next.Processes != p.cfg.Processes || next.Loops() != p.cfg.Loops() {
		p.log.Warn("processes/workers changes take effect on restart or upgrade",
			"processes", p.cfg.Processes, "workers", p.cfg.Loops())
	}
	p.cfg = next
	if p.configCopy != "" {
		// Each worker reads this copy on SIGHUP, not the file, which may have
		// changed again since it was validated.
		if err := publishConfig(p.configCopy, next.Text()); err != nil {
			os.Remove(p.configCopy)
			p.log.Warn("reload: cannot keep a copy of the configuration for the workers; they read the file", "err", err)
		}
	}
	p.log.Info("reload: forwarding SIGHUP to the workers")
	for _, w := range p.workers {
		switch {
		case w.running && w.ready:
			w.cmd.Process.Signal(syscall.SIGHUP)
		case w.running:
			// Starting: it may have read the file before this change and
			// may not handle SIGHUP yet; signal it once it serves.
			w.reload = true
		}
		// A worker waiting to be restarted gets next's text when it starts.
	}
}

// signalAll sends sig to every running worker.
func (p *parent) signalAll(sig syscall.Signal) {
	for _, w := range p.workers {
		if w.running {
			w.cmd.Process.Signal(sig)
		}
	}
}

func (p *parent) running() int {
	n := 0
	for _, w := range p.workers {
		if w.running {
			n++
		}
	}
	return n
}

func (p *parent) allReady() bool {
	for _, w := range p.workers {
		if !w.ready {
			return false
		}
	}
	return true
}
