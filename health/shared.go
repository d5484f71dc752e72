package health

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gale-server/gale/engine"
)

// Shared is the active-check state of one group shared by the worker processes
// of an instance, in memory every process maps (a file beside the stats
// segment): the process that owns the checks runs them and publishes each
// server's down flag; the others read the flags on their home loop every
// interval. An owner whose heartbeat is older than three intervals (a process
// that exited) is replaced by the first process that notices. So an instance
// runs one checker per group, however many worker processes it has.
type Shared struct {
	owner *atomic.Uint64 // pid of the process running the checks; 0 for none
	beat  *atomic.Int64  // unix nanoseconds of the owner's last round
	down  []atomic.Uint64
}

// SharedSize is the bytes a Shared for n servers needs.
func SharedSize(n int) int { return 16 + 8*n }

// SharedOn lays a Shared for n servers over mem (zero-filled at first, 8-byte
// aligned, SharedSize(n) bytes at least).
func SharedOn(mem []byte, n int) (*Shared, error) {
	if n < 1 || len(mem) < SharedSize(n) {
		return nil, fmt.Errorf("health: shared state of %d bytes cannot hold %d servers", len(mem), n)
	}
	if uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		return nil, fmt.Errorf("health: shared state memory is not 8-byte aligned")
	}
	return &Shared{
		owner: (*atomic.Uint64)(unsafe.Pointer(&mem[0])),
		beat:  (*atomic.Int64)(unsafe.Pointer(&mem[8])),
		down:  unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(&mem[16])), n),
	}, nil
}

// pid is this process's identity in a Shared.
func (g *Group) pid() uint64 {
	if g.opts.ProcessID != 0 {
		return g.opts.ProcessID
	}
	return uint64(os.Getpid())
}

// coordinate runs on the home loop every interval when the group shares its
// checks: it takes the checks over when nobody runs them (or the owner went
// quiet), starts them when this process owns them, and otherwise follows the
// owner's flags.
func (g *Group) coordinate(l *engine.Loop) {
	if g.stop.Load() {
		return
	}
	sh, c := g.opts.Shared, g.opts.Check
	now := time.Now().UnixNano()
	me := g.pid()
	if own := sh.owner.Load(); own != me && (own == 0 || now-sh.beat.Load() > 3*int64(c.Interval)) {
		if sh.owner.CompareAndSwap(own, me) {
			sh.beat.Store(now)
			g.log.Info("health: this process runs the group's checks", "pid", me, "previous", own)
		}
	}
	if sh.owner.Load() == me {
		sh.beat.Store(now)
		if !g.checking {
			g.checking = true
			g.startChecks(l)
		}
	} else {
		g.checking = false
		g.follow()
	}
	l.AfterFunc(c.Interval, func() { g.coordinate(l) })
}

// follow applies the owner's published down flags.
func (g *Group) follow() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.srv {
		s := &g.srv[i]
		d := g.opts.Shared.down[i].Load() != 0
		if d == (s.flags.Load()&fDown != 0) {
			continue
		}
		if d {
			g.log.Warn("health: server down (checked by another process)", "server", s.name)
		} else {
			g.log.Info("health: server up (checked by another process)", "server", s.name)
		}
		g.setFlag(i, fDown, d)
	}
}

// publish stores server i's down flag for the other processes (owner only).
func (g *Group) publish(i int, down bool) {
	if sh := g.opts.Shared; sh != nil {
		v := uint64(0)
		if down {
			v = 1
		}
		sh.down[i].Store(v)
	}
}
