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
//
// The operator's changes (drain, enable, weight) are shared the same way: the
// process that took the admin request stores them in the server's admin word,
// and every process applies them at its next round.
type Shared struct {
	owner *atomic.Uint64 // pid of the process running the checks; 0 for none
	beat  *atomic.Int64  // unix nanoseconds of the owner's last round
	down  []atomic.Uint64
	admin []atomic.Uint64 // adminSet | weight<<1 | drained; 0 while never changed
}

// adminSet marks an admin word that holds a change.
const adminSet = 1 << 63

// SharedSize is the bytes a Shared for n servers needs.
func SharedSize(n int) int { return 16 + 16*n }

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
		admin: unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(&mem[16+8*n])), n),
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
	g.syncAdmin()
	sh, c := g.opts.Shared, g.opts.Check
	if c == nil {
		l.AfterFunc(adminSync, func() { g.coordinate(l) })
		return
	}
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
		s.known = true // if this process takes the checks over, fall applies
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

// adminSync is how often a shared group without checks applies the other
// processes' admin changes.
const adminSync = time.Second

// shareAdmin stores server i's drain flag and weight for the other processes.
// Called with mu held.
func (g *Group) shareAdmin(i int) {
	sh := g.opts.Shared
	if sh == nil {
		return
	}
	s := &g.srv[i]
	v := uint64(adminSet) | uint64(s.weight.Load())<<1
	if s.flags.Load()&fDrained != 0 {
		v |= 1
	}
	sh.admin[i].Store(v)
}

// syncAdmin applies the admin changes another process shared.
func (g *Group) syncAdmin() {
	sh := g.opts.Shared
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.srv {
		v := sh.admin[i].Load()
		if v&adminSet == 0 {
			continue
		}
		s := &g.srv[i]
		drained := v&1 != 0
		if drained != (s.flags.Load()&fDrained != 0) {
			g.log.Info("health: server drain changed by another process", "server", s.name, "drained", drained)
			g.setFlag(i, fDrained, drained)
		}
		if w := int32(v >> 1 & 0xffff); w > 0 && w != s.weight.Load() {
			g.log.Info("health: server weight changed by another process", "server", s.name, "weight", w)
			s.weight.Store(w)
			g.weightGen.Add(1)
		}
	}
}
