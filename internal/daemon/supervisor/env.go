package supervisor

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/daemon/app"
)

// Environment variables that gale passes to the processes it starts itself:
// worker children of a supervising parent, and the successor started by a
// binary upgrade. They are a private contract between two gale binaries and
// are removed from the environment as soon as they are read, so that nothing
// a gale process starts inherits them by accident.
const (
	// envWorker marks a worker child and holds its index, 0..processes-1.
	envWorker = "GALE_WORKER"
	// envProcesses is the number of workers the parent runs (for placement).
	envProcesses = "GALE_PROCESSES"
	// envListen names inherited listening sockets: entries separated by ";",
	// each "configured address|bound address|fd,fd,...".
	envListen = "GALE_LISTEN_FDS"
	// envStats is "slot|path" for a worker (the slot its parent reserved) or
	// "|path" for a successor, which reserves its own.
	envStats = "GALE_STATS"
	// envReady is the descriptor on which the process writes one byte once it
	// serves.
	envReady = "GALE_READY_FD"
	// envHeld lists, separated by ";", the socket keys a predecessor listens on
	// without handing their sockets over (addresses its reloads added): the
	// successor binds them anew and does not take the predecessor's sockets
	// there for another process's (see openSockets).
	envHeld = "GALE_HELD_ADDRS"
)

var envNames = []string{envWorker, envProcesses, envListen, envStats, envReady, envTicketFD, envHeld, envConfigFD}

// env is what a process learned from its starter; the zero value (worker -1
// aside) describes a process started by an operator.
type env struct {
	worker    int                      // worker index, or -1 for a top-level process
	processes int                      // workers of the parent (worker children only)
	listeners map[string]app.Inherited // inherited sockets by configured address
	statsPath string                   // segment to open instead of creating one
	statsSlot int                      // slot reserved by the parent, or -1
	ready     *os.File                 // readiness pipe, or nil
	tickets   []byte                   // session ticket secret from the parent, or nil
	held      map[string]bool          // socket keys the predecessor of an upgrade listens on without handing them over
}

// readEnv parses and removes the GALE_* variables.
func readEnv() (env, error) {
	e := env{worker: -1, statsSlot: -1}
	get := func(name string) string {
		v := os.Getenv(name)
		os.Unsetenv(name)
		return v
	}
	var err error
	if v := get(envWorker); v != "" {
		if e.worker, err = strconv.Atoi(v); err != nil || e.worker < 0 {
			return e, fmt.Errorf("%s=%q: not a worker index", envWorker, v)
		}
		if e.processes, err = strconv.Atoi(get(envProcesses)); err != nil || e.processes <= e.worker {
			return e, fmt.Errorf("%s: invalid or missing", envProcesses)
		}
	}
	if e.listeners, err = parseListen(get(envListen)); err != nil {
		return e, err
	}
	if v := get(envStats); v != "" {
		slot, path, ok := strings.Cut(v, "|")
		if !ok || path == "" {
			return e, fmt.Errorf("%s=%q: want SLOT|PATH", envStats, v)
		}
		e.statsPath = path
		if slot != "" {
			if e.statsSlot, err = strconv.Atoi(slot); err != nil || e.statsSlot < 0 {
				return e, fmt.Errorf("%s=%q: invalid slot", envStats, v)
			}
		}
	}
	if v := get(envReady); v != "" {
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			return e, fmt.Errorf("%s=%q: not a descriptor", envReady, v)
		}
		e.ready = os.NewFile(uintptr(fd), "ready")
	}
	if v := get(envTicketFD); v != "" {
		if e.tickets, err = readTicketSecret(v); err != nil {
			return e, err
		}
	}
	if v := get(envHeld); v != "" {
		e.held = map[string]bool{}
		for _, k := range strings.Split(v, ";") {
			e.held[k] = true
		}
	}
	return e, nil
}

// heldAddrs returns the socket keys of cfg, the running configuration, that
// socks does not hold: addresses reloads added, which each serving process
// bound itself. An upgrade names them to the successor (envHeld).
func heldAddrs(cfg *config.Config, socks sockets) []string {
	var out []string
	for _, k := range socketAddrs(cfg) {
		if _, ok := socks[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// formatListen writes the envListen value for socks, whose descriptors will be
// numbered from first on in the started process (os/exec ExtraFiles order).
func formatListen(socks map[string]app.Inherited, first int) string {
	var b strings.Builder
	fd := first
	for _, addr := range sortedAddrs(socks) {
		in := socks[addr]
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(addr + "|" + in.Addr + "|")
		for i := range in.FDs {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(fd))
			fd++
		}
	}
	return b.String()
}

// parseListen reads an envListen value.
func parseListen(v string) (map[string]app.Inherited, error) {
	if v == "" {
		return nil, nil
	}
	out := map[string]app.Inherited{}
	for _, entry := range strings.Split(v, ";") {
		parts := strings.Split(entry, "|")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return nil, fmt.Errorf("%s: malformed entry %q", envListen, entry)
		}
		in := app.Inherited{Addr: parts[1]}
		for _, s := range strings.Split(parts[2], ",") {
			fd, err := strconv.Atoi(s)
			if err != nil || fd < 3 {
				return nil, fmt.Errorf("%s: malformed descriptor in %q", envListen, entry)
			}
			in.FDs = append(in.FDs, fd)
		}
		out[parts[0]] = in
	}
	return out, nil
}

// sortedAddrs returns the keys of socks in order, so that descriptor numbers
// are assigned deterministically.
func sortedAddrs(socks map[string]app.Inherited) []string {
	keys := make([]string, 0, len(socks))
	for k := range socks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// cleanEnv returns the process environment without any GALE_* variable of
// the private contract.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range envNames {
			if name == n {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
