package server

import (
	"runtime"
	"sync"
)

// Pool is a bounded set of goroutines for handlers that may block. The event loop
// submits work without waiting: when every worker is busy and the queue is full,
// TrySubmit refuses and the server answers 503 instead of stalling the loop.
type Pool struct {
	jobs chan func()
	wg   sync.WaitGroup
	once sync.Once
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
	p := &Pool{jobs: make(chan func(), queue)}
	p.wg.Add(workers)
	for i := 0; i < workers; i++ {
		go func() {
			defer p.wg.Done()
			for f := range p.jobs {
				f()
			}
		}()
	}
	return p
}

// TrySubmit queues f unless the queue is full; it never blocks.
func (p *Pool) TrySubmit(f func()) bool {
	select {
	case p.jobs <- f:
		return true
	default:
		return false
	}
}

// Close stops the workers after the queued jobs have run.
func (p *Pool) Close() {
	p.once.Do(func() { close(p.jobs) })
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
