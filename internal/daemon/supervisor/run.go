// Package supervisor runs gale as one or more processes. With `processes: 1`
// the process serves by itself; with `processes: N` it becomes a supervising
// parent that opens the listening sockets, re-executes its own binary N
// times as worker children (each serving its share of the sockets with its
// own event loops), restarts a worker that dies with exponential backoff,
// forwards SIGHUP (workers reload the file themselves) and SIGTERM/SIGINT
// (graceful stop), and exits once every worker has gone after a stop.
//
// Both kinds of top-level process answer SIGUSR2 with a binary upgrade: they
// start the binary found at their own path again, handing over the listening
// sockets; once the successor says it serves, the old process (or the old
// workers) stop accepting and drain within timeouts.upgrade_grace.
//
// Every serving process publishes its counters to a shared-memory segment
// (internal/shm), one slot per worker, which `gale status` reads.
package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/daemon/app"
	"github.com/gale-server/gale/internal/daemon/shm"
	"github.com/gale-server/gale/internal/os/numa"
	"github.com/gale-server/gale/metrics"
	"github.com/gale-server/gale/server"
)

// publishEvery is how often a serving process copies its counters into its
// stats slot.
const publishEvery = 250 * time.Millisecond

// Run serves cfg until ctx is done, as app.Run does, in the process shape
// the configuration and the environment ask for: a worker child (started by
// a gale parent), a supervising parent (processes > 1) or a single process.
// New configurations arrive on config.Reloads(ctx). SIGUSR2 starts a binary
// upgrade (or, in a worker, drains it for its parent's upgrade).
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	e, err := readEnv()
	if err != nil {
		return err
	}
	usr2 := make(chan os.Signal, 4)
	notifyUpgrade(usr2)
	defer signal.Stop(usr2)
	switch {
	case e.worker >= 0:
		isWorker.Store(true)
		return runWorker(ctx, cfg, log.With("worker", e.worker), e, usr2)
	case cfg.Processes > 1:
		return runParent(ctx, cfg, log, e, usr2)
	}
	return runSingle(ctx, cfg, log, e, usr2)
}

// WorkerLogAttrs returns the attributes every log line of a worker process
// carries, "worker" and its index, or nil in a process that is not a worker
// child. It reads the environment the parent set without removing anything,
// so it must be called before Run, which removes it: the command's own log
// lines (reloads, signals) carry the index as the server's do.
func WorkerLogAttrs() []any {
	v := os.Getenv(envWorker)
	n, err := strconv.Atoi(v)
	if v == "" || err != nil || n < 0 {
		return nil
	}
	return []any{"worker", n}
}

// StatsPath returns where the stats segment of an instance running cfg
// lives: gale-HASH.stats in shm.Dir(), HASH taken over the absolute path of
// the configuration file (see StatsPathForFile), or over the listen
// addresses of a configuration that has no file (gale, gale file-server).
func StatsPath(cfg *config.Config) string {
	if cfg.Name() != "" {
		return StatsPathForFile(cfg.Name())
	}
	return statsPathForKey("listen:" + strings.Join(listenAddrs(cfg), ","))
}

// StatsPathForFile returns the stats segment path of an instance started
// with `gale serve -c file`; gale status uses it without parsing the file.
func StatsPathForFile(file string) string {
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	return statsPathForKey("file:" + file)
}

func statsPathForKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(shm.Dir(), "gale-"+hex.EncodeToString(sum[:6])+".stats")
}

// numaRoot is where plan reads the NUMA topology; tests point it at a fake
// sysfs tree.
var numaRoot = numa.DefaultRoot

// plan places the loops of worker process `process` of `processes` according
// to cpu_affinity and numa, and logs the topology and placement it used.
func plan(cfg *config.Config, log *slog.Logger, process, processes int) *numa.Placement {
	var cpus []int
	group := false
	switch cfg.CPUAffinity.Mode {
	case config.AffinityOff:
		p := numa.Placement{}
		log.Info("placement", "cpu_affinity", "off", "loops", p.String())
		return &p
	case config.AffinityList:
		cpus = cfg.CPUAffinity.CPUs
	default:
		cpus = allowed()
		group = true
	}
	topo, err := numa.Read(numaRoot)
	p := numa.Plan(topo, numa.Request{CPUs: cpus, Group: group, NUMA: cfg.NUMA == config.NUMAAuto && err == nil,
		Loops: cfg.Loops(), Process: process, Processes: processes})
	if cfg.CPUAffinity.Mode == config.AffinityList {
		unpinForbidden(&p, allowed(), log)
	}
	log.Info("placement", "numa", describeTopology(cfg, topo, err, p.Nodes != nil), "loops", p.String())
	return &p
}

// allowed lists the CPUs this process may run on (allowedCPUs; replaced in
// tests).
var allowed = allowedCPUs

// unpinForbidden leaves unpinned, with a warning, each loop of p whose CPU
// from a cpu_affinity list is not one the process may run on (a CPU the
// machine does not have, or one its affinity mask or cgroup leaves out), so
// that the placement logged is the one used; when the loops left pinned all
// lie on one node, nothing is bound. ok lists the allowed CPUs; nil
// (unknown) changes nothing.
func unpinForbidden(p *numa.Placement, ok []int, log *slog.Logger) {
	if ok == nil {
		return
	}
	changed := false
	for i, c := range p.CPUs {
		if c >= 0 && !slices.Contains(ok, c) {
			log.Warn("cpu_affinity: this process may not run on the CPU; the loop runs unpinned", "loop", i, "cpu", c, "allowed", numa.FormatCPUList(ok))
			p.CPUs[i], changed = -1, true
			if p.Nodes != nil {
				p.Nodes[i] = -1
			}
		}
	}
	if !changed || p.Nodes == nil {
		return
	}
	// As numa.Plan does, bind only when the loops left pinned use more than
	// one node.
	nodes := map[int]bool{}
	for _, n := range p.Nodes {
		if n >= 0 {
			nodes[n] = true
		}
	}
	if len(nodes) < 2 {
		p.Nodes = nil
	}
}

// logTopology logs the NUMA topology a supervising parent found; each worker
// logs its own placement.
func logTopology(cfg *config.Config, log *slog.Logger) {
	topo, err := numa.Read(numaRoot)
	log.Info("topology", "numa", describeTopology(cfg, topo, err, true), "cpu_affinity", cfg.CPUAffinity.Mode,
		"processes", cfg.Processes, "workers", cfg.Loops())
}

// describeTopology renders the topology for the startup log, saying why
// nothing is bound when that is the case.
func describeTopology(cfg *config.Config, topo numa.Topology, err error, bound bool) string {
	desc := topo.String()
	switch {
	case err != nil:
		desc = "unknown (" + err.Error() + ")"
	case cfg.NUMA == config.NUMAOff:
		desc += " (numa: off)"
	case !bound:
		desc += " (one node in use: no binding)"
	}
	return desc
}

// listenAddrs returns every configured listen address, sorted, without
// duplicates.
func listenAddrs(cfg *config.Config) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range cfg.Servers {
		for _, a := range s.Listen {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	sort.Strings(out)
	return out
}

// socketAddrs returns the keys of the addresses whose sockets a top-level
// process opens (checked free, shared by its workers, handed to an upgrade's
// successor): every server's, the admin listener's, every redirect_http
// address and every tcp entry's, the last three under their app socket keys.
func socketAddrs(cfg *config.Config) []string {
	addrs := listenAddrs(cfg)
	if a := cfg.Admin.Listen; a != "" {
		addrs = append(addrs, app.AdminSocketKey(a))
	}
	seen := map[string]bool{}
	add := func(key string) {
		if !seen[key] {
			seen[key] = true
			addrs = append(addrs, key)
		}
	}
	for i := range cfg.Servers {
		if t := cfg.Servers[i].TLS; t != nil && len(cfg.Servers[i].Listen) > 0 {
			for _, a := range t.RedirectHTTP {
				add(app.RedirectSocketKey(a))
			}
		}
	}
	for i := range cfg.TCP {
		for _, a := range cfg.TCP[i].Listen {
			add(app.TCPSocketKey(a))
		}
	}
	return addrs
}

// counters reads srv's statistics in the shape of a stats slot.
func counters(srv *server.Server) func() shm.Counters {
	return func() shm.Counters {
		st := srv.Stats()
		return shm.Counters{
			Accepted: st.Accepted, Active: uint64(max(st.Active, 0)), Requests: st.Requests,
			BytesIn: st.BytesIn, BytesOut: st.BytesOut, Errors: st.BadRequests,
		}
	}
}

// openStats opens the segment a predecessor handed over, or creates this
// instance's segment. Without one gale serves on and gale status is blind;
// that is logged, not fatal.
func openStats(cfg *config.Config, log *slog.Logger, e env) *shm.Segment {
	if e.statsPath != "" {
		seg, err := shm.Open(e.statsPath)
		if err == nil {
			seg.SetHolder(os.Getpid())
			heldStats.Store(seg)
			return seg
		}
		log.Warn("stats: cannot open the segment handed over; creating a new one", "path", e.statsPath, "err", err)
	}
	path := StatsPath(cfg)
	metrics.RemoveTables(path) // a new instance starts from zero
	shm.RemoveLoadTables(path)
	seg, err := shm.Create(path, 0)
	if err != nil {
		log.Warn("stats: no shared-memory segment; gale status will not see this instance", "path", path, "err", err)
		return nil
	}
	seg.SetHolder(os.Getpid())
	heldStats.Store(seg)
	return seg
}

// closeStats releases a holder's segment at exit: removed unless a successor
// took it over.
func closeStats(seg *shm.Segment, handedOver bool) {
	if seg == nil {
		return
	}
	heldStats.CompareAndSwap(seg, nil)
	if !handedOver {
		removeStats(seg)
	}
	seg.Close()
}

// removeStats deletes seg's file (if it is still seg's) and every metrics
// and load table and the configuration copy beside it.
func removeStats(seg *shm.Segment) {
	seg.Remove()
	os.Remove(seg.Path() + configSuffix)
	os.Remove(seg.Path() + refusedSuffix)
	metrics.RemoveTables(seg.Path())
	shm.RemoveLoadTables(seg.Path())
}

// sendReady tells whoever started this process that it serves, once.
func sendReady(f **os.File, log *slog.Logger) {
	if *f == nil {
		return
	}
	if _, err := (*f).Write([]byte{1}); err != nil {
		log.Warn("cannot report readiness", "err", err)
	}
	(*f).Close()
	*f = nil
}

// describeExit renders a process's end for the log.
func describeExit(st *os.ProcessState, err error) string {
	if st == nil {
		return fmt.Sprint(err)
	}
	return st.String()
}
