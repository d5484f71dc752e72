package app

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/daemon/shm"
	"github.com/gale-server/gale/lb"
	"github.com/gale-server/gale/proxy"
)

// loadRows is the number of process rows of a shared load table: one per
// possible stats slot of a default segment.
const loadRows = shm.DefaultSlots

// sharedLoads holds the load tables this process attached to, by path and
// row (one row per process in production; tests run several Apps): a reload that keeps an upstream's servers keeps its table (attaching again
// would take this process's own in-flight requests out of the totals). The
// mappings live as long as the process; in-flight requests of a retired
// configuration may still count in them.
var sharedLoads struct {
	mu sync.Mutex
	m  map[string]*lb.Loads
}

// balanceOptions copies the configured balancing method of cu into o; for a
// method that counts in-flight requests in a process of a multi-worker
// instance, the counts go to a table shared by every worker.
func (env *actionEnv) balanceOptions(o *proxy.UpstreamOptions, name string, cu *config.Upstream) error {
	key, err := lb.ParseKey(cu.HashKey)
	if err != nil {
		return err
	}
	o.Balance, o.HashKey = cu.Balance, key
	o.BalanceOptions = lb.Options{
		VNodes: cu.VNodes, TableSize: cu.TableSize, BoundedLoad: float64(cu.BoundedLoad) / 100,
	}
	counts := cu.Balance == lb.LeastConn || cu.Balance == lb.P2CEWMA || cu.BoundedLoad > 0
	if counts && env.statsPath != "" {
		o.BalanceOptions.Loads = env.sharedLoads(name, cu)
	}
	return nil
}

// sharedLoads returns the instance-wide load table of upstream name, or nil
// (private counts) when it cannot be mapped, which is logged.
func (env *actionEnv) sharedLoads(name string, cu *config.Upstream) *lb.Loads {
	h := sha256.New()
	h.Write([]byte(name))
	for _, s := range cu.Servers {
		h.Write([]byte("\n" + s.Address + "/" + strconv.FormatBool(s.Backup)))
	}
	path := shm.LoadTablePath(env.statsPath, hex.EncodeToString(h.Sum(nil)[:6]))
	key := path + "#" + strconv.Itoa(env.statsSlot)
	sharedLoads.mu.Lock()
	defer sharedLoads.mu.Unlock()
	if l := sharedLoads.m[key]; l != nil {
		return l
	}
	n := len(cu.Servers)
	mem, err := shm.MapShared(path, lb.LoadsSize(n, loadRows))
	if err == nil {
		var l *lb.Loads
		if l, err = lb.LoadsOn(mem, n, loadRows, env.statsSlot, os.Getpid(), shm.ProcessAlive); err == nil {
			if sharedLoads.m == nil {
				sharedLoads.m = map[string]*lb.Loads{}
			}
			sharedLoads.m[key] = l
			return l
		}
		shm.Unmap(mem)
	}
	slog.Warn("proxy: in-flight counts stay per process (no shared load table)", "upstream", name, "path", path, "err", err)
	return nil
}
