package tlsterm

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Pool runs TLS handshakes off the event loops. At most Workers handshakes are in
// progress at a time (each a goroutine, started on demand and gone when there is
// no more work), at most Queue more wait for a worker, and any beyond that are
// refused (the connection is closed and counted). A handshake holds one of CPU
// tokens while it computes and gives it back while it waits for the client, so a
// flood of handshakes, or of clients that stall in the middle of theirs, occupies
// at most CPU processors and the loops keep running. A Pool may serve several
// terminators; it is safe for concurrent use.
type Pool struct {
	workers int
	jobs    chan func()
	cpu     cpuTokens

	mu      sync.Mutex // guards running
	running int

	started   atomic.Uint64 // handshakes started
	completed atomic.Uint64 // handshakes that succeeded
	refused   atomic.Uint64 // handshakes refused: workers and queue full
	failed    atomic.Uint64 // handshakes that ended in an error (bad input, timeout)
	timedOut  atomic.Uint64 // handshakes cut by the handshake timeout
}

// Default pool bounds (see NewPool).
const (
	DefaultWorkers = 1024
	DefaultQueue   = 4096
)

// NewPool returns a pool of at most workers concurrent handshakes, queue waiting
// ones and cpu tokens; zero or negative values take DefaultWorkers, DefaultQueue
// and runtime.NumCPU().
func NewPool(workers, queue, cpu int) *Pool {
	if workers <= 0 {
		workers = DefaultWorkers
	}
	if queue <= 0 {
		queue = DefaultQueue
	}
	if cpu <= 0 {
		cpu = runtime.NumCPU()
	}
	p := &Pool{workers: workers, jobs: make(chan func(), queue)}
	p.cpu.c = make(chan struct{}, cpu)
	return p
}

// submit runs job on a worker, or queues it; it reports false when both are full.
func (p *Pool) submit(job func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running < p.workers {
		p.running++
		go p.work(job)
		return true
	}
	// Queued under mu, so that a worker deciding to exit (under mu) sees it.
	select {
	case p.jobs <- job:
		return true
	default:
		p.refused.Add(1)
		return false
	}
}

// work runs job and then queued jobs until there are none.
func (p *Pool) work(job func()) {
	for {
		p.cpu.acquire()
		job()
		p.cpu.release()
		p.mu.Lock()
		select {
		case job = <-p.jobs:
			p.mu.Unlock()
			continue
		default:
		}
		p.running--
		p.mu.Unlock()
		return
	}
}

// PoolStats are a Pool's cumulative counters.
type PoolStats struct {
	Started   uint64 // handshakes started
	Completed uint64 // succeeded
	Refused   uint64 // refused because every worker was busy and the queue full
	Failed    uint64 // ended in an error, timeouts included
	TimedOut  uint64 // cut by the handshake timeout
	Running   int    // workers running now
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	running := p.running
	p.mu.Unlock()
	return PoolStats{
		Started: p.started.Load(), Completed: p.completed.Load(), Refused: p.refused.Load(),
		Failed: p.failed.Load(), TimedOut: p.timedOut.Load(), Running: running,
	}
}

// cpuTokens is a counting semaphore: a handshake computes only while it holds one.
type cpuTokens struct{ c chan struct{} }

func (t *cpuTokens) acquire() { t.c <- struct{}{} }
func (t *cpuTokens) release() { <-t.c }
