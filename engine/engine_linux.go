//go:build linux && !galenet

package engine

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/gale-server/gale/internal/os/poll"
	"github.com/gale-server/gale/internal/os/sys"
	"golang.org/x/sys/unix"
)

// Engine owns the loops and the listening sockets.
type Engine struct {
	cfg      Config
	uring    bool      // the loops run io_uring (Config.Backend)
	table    connTable // descriptor -> connection; each slot written only by its loop
	loops    []*Loop
	mu       sync.Mutex // guards started, drainedN, drainCh
	started  bool
	drainedN int
	drainCh  chan struct{}
}

// New creates an engine with its loops; they start running at Start.
func New(cfg Config) (*Engine, error) {
	cfg.fill()
	useURing, why, err := resolveBackend(cfg.Backend)
	if err != nil {
		return nil, err
	}
	if why != nil {
		cfg.Logger.Info("engine: io_uring unavailable, running epoll", "err", why)
	}
	e := &Engine{cfg: cfg, uring: useURing, drainCh: make(chan struct{})}
	for i := 0; i < cfg.Workers; i++ {
		p, err := poll.New()
		if err != nil {
			for _, l := range e.loops {
				l.poller.Close()
			}
			return nil, err
		}
		cpu := -1
		if len(cfg.CPUs) > 0 {
			cpu = cfg.CPUs[i%len(cfg.CPUs)]
		}
		l := &Loop{loopSys: loopSys{cpu: cpu, poller: p}, id: i, eng: e, done: make(chan struct{})}
		if useURing {
			l.ur = &uloop{} // the ring itself is created on the loop's thread (Start)
		}
		l.buf, l.bufNUMA = e.allocReadBuf(i)
		l.zc.min = max(cfg.ZeroCopy, 0)
		e.loops = append(e.loops, l)
	}
	return e, nil
}

// Listen opens one SO_REUSEPORT socket on addr per loop, served by h, and returns the
// bound address (useful with port 0). It may be called before or after Start.
func (e *Engine) Listen(addr string, h Handler) (string, error) {
	return e.ListenWith(addr, h, ListenOptions{})
}

// ListenWith is Listen with per-listener options.
func (e *Engine) ListenWith(addr string, h Handler, o ListenOptions) (string, error) {
	fds := make([]int, 0, len(e.loops))
	bound := addr
	for range e.loops {
		fd, err := sys.Listen(bound, true)
		if err != nil {
			for _, f := range fds {
				sys.Close(f)
			}
			return "", fmt.Errorf("listen %s: %w", addr, err)
		}
		if len(fds) == 0 {
			if bound, err = sys.LocalAddr(fd); err != nil {
				sys.Close(fd)
				return "", err
			}
		}
		fds = append(fds, fd)
	}
	if err := setListenOptions(fds, o); err != nil {
		for _, f := range fds {
			sys.Close(f)
		}
		return "", fmt.Errorf("listen %s: %w", addr, err)
	}
	return bound, e.adopt(fds, h, o.DeferAccept > 0)
}

// ListenFDs serves already-listening sockets (inherited across an upgrade); fds are
// spread over the loops, several per loop if there are more sockets than loops.
func (e *Engine) ListenFDs(fds []int, h Handler) error {
	return e.ListenFDsWith(fds, h, ListenOptions{})
}

// ListenFDsWith is ListenFDs with per-listener options, which replace whatever
// the inherited sockets had.
func (e *Engine) ListenFDsWith(fds []int, h Handler, o ListenOptions) error {
	for _, fd := range fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			return errnoErr("fcntl", err.(unix.Errno))
		}
	}
	if err := setListenOptions(fds, o); err != nil {
		return err
	}
	return e.adopt(fds, h, o.DeferAccept > 0)
}

// setListenOptions applies o to listening sockets.
func setListenOptions(fds []int, o ListenOptions) error {
	secs := 0
	if o.DeferAccept > 0 {
		secs = int((o.DeferAccept + time.Second - 1) / time.Second)
	}
	for _, fd := range fds {
		if err := sys.SetDeferAccept(fd, secs); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) adopt(fds []int, h Handler, deferred bool) error {
	var wg sync.WaitGroup
	for i, fd := range fds {
		l := e.loops[i%len(e.loops)]
		ls := &lsock{fd: fd, h: h, deferred: deferred}
		register := func() {
			defer wg.Done()
			ls.tag = int32(tagListener + len(l.lsocks))
			ls.hidx = l.handlers.acquire(ls.h) // held for good
			l.lsocks = append(l.lsocks, ls)
			if l.ur != nil {
				if l.ur.ring != nil {
					l.uArmAccept(ls)
				} // else armed when the loop starts
			} else if err := l.poller.Add(fd, poll.In, ls.tag); err != nil {
				e.cfg.Logger.Error("listener registration failed", "err", err)
			}
		}
		wg.Add(1)
		e.mu.Lock()
		started := e.started
		e.mu.Unlock()
		if started {
			l.Post(register)
		} else {
			register()
		}
	}
	wg.Wait()
	return nil
}

// ListenerFDs returns the listening descriptors of every loop (for handing to a new
// binary during an upgrade).
func (e *Engine) ListenerFDs() []int {
	var fds []int
	for _, l := range e.loops {
		for _, ls := range l.lsocks {
			if !ls.closed {
				fds = append(fds, ls.fd)
			}
		}
	}
	return fds
}

// StopAccepting closes the listening sockets of every loop and leaves open
// connections alone: they are served until they close or Shutdown ends them.
// It is the first step of draining an old process after a binary upgrade,
// whose successor holds duplicates of the same sockets and keeps accepting
// on them (closing this process's descriptors loses no queued connection).
// Safe from any goroutine; it returns once every running loop has closed its
// sockets. Listen after StopAccepting opens new sockets as usual.
func (e *Engine) StopAccepting() {
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started {
		for _, l := range e.loops {
			l.closeListeners()
		}
		return
	}
	for _, l := range e.loops {
		l := l
		closed := make(chan struct{})
		l.Post(func() {
			l.closeListeners()
			close(closed)
		})
		select {
		case <-closed:
		case <-l.done: // the loop has stopped and closed everything already
		}
	}
}

// Backend names the kernel interface the loops use: BackendEpoll or
// BackendIOURing (a loop whose ring fails to start falls back to epoll and logs it).
func (e *Engine) Backend() string { return e.backendName() }

// Start launches the loops.
func (e *Engine) Start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return
	}
	e.started = true
	reserveProcs(len(e.loops))
	e.cfg.Logger.Debug("engine started", "backend", e.backendName(), "loops", len(e.loops))
	for _, l := range e.loops {
		go l.run()
	}
}

// procsMu serialises GOMAXPROCS adjustments of engines started concurrently.
var procsMu sync.Mutex

// reserveProcs raises GOMAXPROCS to at least loops+1. Each loop holds a P while it
// runs and parks in epoll_wait inside a system call; with no P left idle, the Go
// runtime's sysmon retakes a parked loop's P after 20µs and keeps polling at that
// rate, which costs a context switch per wake-up (measured: about a third of the
// tiny-response throughput on 2 cores). One spare P lets sysmon back off and leaves
// room for timers, the blocking pool and the garbage collector. It never lowers
// GOMAXPROCS.
func reserveProcs(loops int) {
	procsMu.Lock()
	defer procsMu.Unlock()
	if runtime.GOMAXPROCS(0) < loops+1 {
		runtime.GOMAXPROCS(loops + 1)
	}
}

// Shutdown stops accepting, asks every connection's handler to finish (OnShutdown),
// waits until all connections are closed or ctx ends, then closes what is left and
// stops the loops. It returns ctx.Err() when the grace period cut connections.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started {
		for _, l := range e.loops {
			l.closeAll(ErrShutdown)
			l.release()
		}
		return nil
	}
	for _, l := range e.loops {
		l := l
		l.Post(func() {
			l.drain = true
			l.closeListeners()
			l.eachConn(func(c *Conn) {
				if c.flags&fClosed == 0 {
					c.handler().OnShutdown(c)
				}
			})
		})
	}
	var err error
	select {
	case <-e.drainCh:
	case <-ctx.Done():
		err = ctx.Err()
		for _, l := range e.loops {
			l := l
			l.Post(func() { l.stop = true })
		}
	}
	for _, l := range e.loops {
		<-l.done
	}
	return err
}
