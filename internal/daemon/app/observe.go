package app

import (
	"os"
	"sort"
	"sync"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/health"
	"github.com/gale-server/gale/metrics"
	"github.com/gale-server/gale/server"
)

// maxReloads is how many reloads /status.json remembers.
const maxReloads = 20

// observability is an App's metrics and access logs. The registry lives as
// long as the App, so a reload keeps the counters of routes it keeps.
type observability struct {
	reg  *metrics.Registry
	proc *metrics.Process
	// features are the health and layer-4 collectors, whose counters the
	// process publishes with its own numbers (metrics.Features).
	features *metrics.Features
	// statsPath and statsSlot are Options.StatsPath and StatsSlot: where the
	// instance's shared tables live and this process's row in them.
	statsPath string
	statsSlot int
	hubs      *hubSet                 // pub/sub hubs (presence), kept across reloads like the registry
	started   time.Time               // Options.Started
	refused   func() []metrics.Reload // Options.RefusedReloads; nil when none

	mu      sync.Mutex // guards reloads
	reloads []metrics.Reload
}

func newObservability(cfg *config.Config, srv func() server.Stats, opts Options) *observability {
	buckets := cfg.Admin.Metrics.Buckets
	if len(buckets) == 0 {
		buckets = config.DefaultBuckets()
	}
	reg := metrics.NewRegistry(cfg.Loops(), buckets)
	return &observability{reg: reg, proc: metrics.NewProcess(reg, srv, opts.StatsPath, opts.StatsSlot, os.Getpid()),
		statsPath: opts.StatsPath, statsSlot: opts.StatsSlot, hubs: newHubSet(), started: opts.Started, refused: opts.RefusedReloads}
}

// observer returns what the router attaches to requests of route ri of
// server si (ri < 0: requests no route matched), or nil when neither the
// admin listener nor the server's access log wants them.
func (o *observability) observer(cfg *config.Config, logs *logSet, si, ri int) *metrics.Observer {
	s := &cfg.Servers[si]
	name := "none"
	if ri >= 0 {
		name = s.RouteName(ri)
	}
	ob := &metrics.Observer{Name: name}
	if cfg.Admin.Listen != "" {
		ob.Route = o.reg.Route(cfg.ServerName(si), name)
	}
	if l := logs.forServer(si); l != nil {
		ob.Log = l
	}
	if ob.Route == nil && ob.Log == nil {
		return nil
	}
	return ob
}

// recordReload remembers the outcome of a reload for /status.json.
func (o *observability) recordReload(err error) {
	r := metrics.Reload{Time: time.Now(), OK: err == nil}
	if err != nil {
		r.Error = err.Error()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reloads = append(o.reloads, r)
	if len(o.reloads) > maxReloads {
		o.reloads = o.reloads[len(o.reloads)-maxReloads:]
	}
}

// RecordRefusedReload lists err, the error of a configuration refused before it
// reached the App (a file that does not validate), with the reloads /status.json
// shows, as failed.
func (a *App) RecordRefusedReload(err error) { a.obs.recordReload(err) }

// adminHandler builds the admin listener's handler for cfg.
func (a *App) adminHandler(cfg *config.Config) *metrics.Admin {
	return metrics.NewAdmin(metrics.AdminOptions{
		Process:   a.obs.proc,
		Started:   a.obs.started,
		Token:     cfg.Admin.Token,
		Ready:     func() bool { return !a.srv.Draining() },
		Info:      a.info,
		Upstreams: &health.API{Groups: a.healthGroups},
		Features:  a.obs.features,
	})
}

// info is the App's part of /status.json.
func (a *App) info() metrics.Info {
	a.obs.mu.Lock()
	in := metrics.Info{Reloads: append([]metrics.Reload{}, a.obs.reloads...)} // [] in JSON before the first reload, not null
	a.obs.mu.Unlock()
	if a.obs.refused != nil {
		in.Reloads = append(in.Reloads, a.obs.refused()...)
		sort.SliceStable(in.Reloads, func(i, j int) bool { return in.Reloads[i].Time.Before(in.Reloads[j].Time) })
		in.Reloads = in.Reloads[max(0, len(in.Reloads)-maxReloads):]
	}
	a.mu.Lock()
	in.Config = a.cfg.Name()
	a.mu.Unlock()
	for _, l := range a.srv.Engine().Loops() {
		st := l.Stats()
		in.Loops = append(in.Loops, metrics.Loop{ID: l.ID(), Accepted: st.Accepted, Active: st.Active})
	}
	if a.workers != nil {
		in.Workers = a.workers()
	}
	if gs := a.healthGroups(); len(gs) > 0 {
		ups := make([]health.GroupStatus, 0, len(gs))
		for _, g := range gs {
			ups = append(ups, g.Status())
		}
		in.Upstreams = ups
	}
	return in
}

// Metrics returns the process's metrics view; the supervisor runs its
// publisher.
func (a *App) Metrics() *metrics.Process { return a.obs.proc }
