package supervisor

import (
	"os"
	"sync"
	"sync/atomic"

	"github.com/gale-server/gale/internal/daemon/shm"
)

// isWorker is set once Run knows that this process is a worker child.
var isWorker atomic.Bool

// heldStats is the stats segment this process created or took over and
// removes at its exit (closeStats), kept for Abort. It is nil in a worker,
// once the segment is closed, and from the moment an upgrade may hand the
// segment to a successor, which then holds it.
var heldStats atomic.Pointer[shm.Segment]

// children is the set of worker processes a supervising parent runs, kept
// for Abort, which runs on the signal goroutine rather than the parent's.
var children = struct {
	sync.Mutex
	procs map[*os.Process]bool
}{procs: map[*os.Process]bool{}}

// addChild records a started worker process.
func addChild(p *os.Process) {
	children.Lock()
	defer children.Unlock()
	children.procs[p] = true
}

// removeChild forgets a worker process that has exited.
func removeChild(p *os.Process) {
	children.Lock()
	defer children.Unlock()
	delete(children.procs, p)
}

// Abort is called on a second termination signal, before the process exits
// without waiting for its connections, and reports whether it should.
//
// A supervising parent kills its workers first, so that they do not outlive
// it: their own graceful stop, asked for by the first signal, would
// otherwise run on unsupervised.
//
// A worker answers false and keeps stopping gracefully: a worker's repeated
// termination signals come from its parent's death, not from an operator.
// The kernel sends the parent-death signal (PR_SET_PDEATHSIG) each time the
// child is handed to another parent, and a dying parent hands it from
// thread to thread before init adopts it, so that one death often arrives
// as two or three SIGTERMs. A parent that aborts kills its workers itself.
//
// The process that holds the stats segment (a parent, or a single process)
// removes it with its tables, as its ordinary exit would: the instance was
// stopped, not killed, so gale status should not find it and report it as
// killed, and /dev/shm should not keep its files.
func Abort() bool {
	if isWorker.Load() {
		return false
	}
	children.Lock()
	defer children.Unlock()
	for p := range children.procs {
		p.Kill()
	}
	if seg := heldStats.Swap(nil); seg != nil {
		removeStats(seg)
	}
	return true
}
