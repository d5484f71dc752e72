package server

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Pool is a bounded set of goroutines for handlers that may block. The event loop
// submits work without waiting: when every worker is busy and the queue is full,
// TrySubmit refuses and the server answers 503 instead of stalling the loop.
type Pool struct {
	jobs   chan Task
	wg     sync.WaitGroup
	once   sync.Once
	closed atomic.Bool // set by Close before it closes jobs
}

// NewPool starts workers goroutines (0: 64 per CPU) with a queue of queue jobs
// (0: 16 per worker).
func NewPool(workers, queue int) *Pool {
	if workers <= 0 {
		workers = 64 * runtime.NumCPU()
	}
	if queue <= 0 {
		queue = 16 * workers
	}
	p := &Pool{jobs: make(chan Task, queue)}
	p.wg.Add(workers)
	for i := 0; i < workers; i++ {
		go func() {
			defer p.wg.Done()
			for t := range p.jobs {
				t.Run()
			}
		}()
	}
	return p
}

// Task is a job for a Pool.
type Task interface{ Run() }

// funcTask runs a function as a Task; a func value converts to the interface
// without an allocation.
type funcTask func()

func (f funcTask) Run() { f() }

// TrySubmit queues f unless the queue is full; it never blocks.
func (p *Pool) TrySubmit(f func()) bool { return p.TrySubmitTask(funcTask(f)) }

// TrySubmitTask queues t unless the queue is full or the pool is closed; it never
// blocks. A caller with a per-request struct passes it as the Task and saves the
// closure TrySubmit needs.
func (p *Pool) TrySubmitTask(t Task) (ok bool) {
	if p.closed.Load() {
		return false
	}
	// Close may close jobs between the check and the send: that send panics,
	// and is a refusal like a full queue, not a crash of the loop.
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	select {
	case p.jobs <- t:
		return true
	default:
		return false
	}
}

// Queued returns how many submitted jobs wait for a worker (not counting those
// running). It is a snapshot, for metrics and tests.
func (p *Pool) Queued() int { return len(p.jobs) }

// Close stops the workers after the queued jobs have run. Submissions after it are
// refused (a server still running answers them 503), so closing the pool before
// shutting the server down costs requests, not the process.
func (p *Pool) Close() {
	p.once.Do(func() {
		p.closed.Store(true)
		close(p.jobs)
	})
	p.wg.Wait()
}

// Blocking runs a native Handler on the pool instead of inline: the handler may
// block, and must finish its response through Ctx.Post (every Ctx method must run
// on the loop).
func Blocking(h Handler, p *Pool) Handler {
	return HandlerFunc(func(c *Ctx) {
		c.Detach()
		if !p.TrySubmit(func() { h.ServeGale(c) }) {
			c.Error(503, "worker pool is full")
			return
		}
		// The worker runs on the loop's P before the loop waits again, and what it
		// posts leaves in this iteration (see engine.Loop.YieldBeforeWait).
		c.Loop().YieldBeforeWait()
	})
}
