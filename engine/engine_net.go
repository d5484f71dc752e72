//go:build !linux || galenet

package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/internal/os/listenaddr"
)

// Engine owns the loops and the listening sockets. The portable engine has one
// listener per address, with an accept goroutine that hands connections to the
// loops in turn; Config.CPUs and Config.Nodes are ignored.
type Engine struct {
	cfg      Config
	loops    []*Loop
	next     atomic.Uint64 // round-robin position for accepted connections
	mu       sync.Mutex    // guards started, shutdown, lns, drainedN
	started  bool
	shutdown bool
	lns      []*listener
	drainedN int
	drainCh  chan struct{}
}

// listener is one listening socket and its accept goroutine.
type listener struct {
	ln   net.Listener  // immutable
	file *os.File      // immutable: the adopted descriptor (ListenFDs), closed with ln; nil after Listen
	fd   int           // immutable: the descriptor ListenerFDs reports, or -1
	h    Handler       // immutable
	done chan struct{} // guarded by Engine.mu: set when the accept goroutine starts, closed when it ends
}

// Backend reports BackendPortable: this engine is built on the net package.
func (e *Engine) Backend() string { return BackendPortable }

// New creates an engine with its loops; they start running at Start.
func New(cfg Config) (*Engine, error) {
	cfg.fill()
	switch cfg.Backend {
	case "", BackendAuto, BackendEpoll, BackendPortable:
	case BackendIOURing:
		return nil, &BackendError{Backend: cfg.Backend, Err: errors.New("the portable engine has no io_uring")}
	default:
		return nil, &BackendError{Backend: cfg.Backend}
	}
	e := &Engine{cfg: cfg, drainCh: make(chan struct{})}
	for i := 0; i < cfg.Workers; i++ {
		e.loops = append(e.loops, &Loop{
			loopSys: loopSys{
				conns: map[*Conn]struct{}{},
				buf:   make([]byte, maxRetained+readBufSize),
				wake:  make(chan struct{}, 1),
			},
			id: i, eng: e, done: make(chan struct{}),
		})
	}
	return e, nil
}

// Listen opens a listening socket on addr ("ip:port"; an empty host or 0.0.0.0
// means every IPv4 address, localhost means 127.0.0.1), served by h, and returns the
// bound address (useful with port 0). It may be called before or after Start.
func (e *Engine) Listen(addr string, h Handler) (string, error) {
	network, bind, err := parseListenAddr(addr)
	if err != nil {
		return "", fmt.Errorf("listen %s: %w", addr, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), network, bind)
	if err != nil {
		return "", fmt.Errorf("listen %s: %w", addr, err)
	}
	bound := ln.Addr().String()
	if err := e.adopt(&listener{ln: ln, fd: rawFD(ln), h: h}); err != nil {
		return "", err
	}
	return bound, nil
}

// parseListenAddr maps addr to a network and address for net.Listen with
// listenaddr.Resolve, the rules of the Linux engine and of `gale check`.
func parseListenAddr(addr string) (network, bind string, err error) {
	ap, err := listenaddr.Resolve(addr)
	if err != nil {
		return "", "", err
	}
	if ap.Addr().Is4() {
		return "tcp4", ap.String(), nil
	}
	return "tcp", ap.String(), nil // IPv6, dual-stack for :: as on Linux
}

// ListenFDs serves already-listening sockets (inherited across an upgrade). The
// engine owns fds from now on and closes them at StopAccepting or Shutdown. Systems
// whose net package cannot adopt a listening descriptor (Windows) return its error.
func (e *Engine) ListenFDs(fds []int, h Handler) error {
	return e.ListenFDsWith(fds, h, ListenOptions{})
}

// ListenWith is Listen; the portable engine has no per-listener options.
func (e *Engine) ListenWith(addr string, h Handler, _ ListenOptions) (string, error) {
	return e.Listen(addr, h)
}

// ListenFDsWith is ListenFDs; the portable engine has no per-listener options.
func (e *Engine) ListenFDsWith(fds []int, h Handler, _ ListenOptions) error {
	lns := make([]*listener, 0, len(fds))
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "listener")
		ln, err := net.FileListener(f) // listens on a duplicate of fd
		if err != nil {
			for _, ls := range lns {
				ls.ln.Close()
			}
			return fmt.Errorf("listen on descriptor %d: %w", fd, err)
		}
		lns = append(lns, &listener{ln: ln, file: f, fd: fd, h: h})
	}
	for _, ls := range lns {
		if err := e.adopt(ls); err != nil {
			return err
		}
	}
	return nil
}

// adopt registers a listener and starts accepting on it if the engine runs.
func (e *Engine) adopt(ls *listener) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.shutdown {
		ls.close()
		return ErrShutdown
	}
	e.lns = append(e.lns, ls)
	if e.started {
		e.startAccepting(ls)
	}
	return nil
}

// startAccepting launches ls's accept goroutine; the caller holds e.mu.
func (e *Engine) startAccepting(ls *listener) {
	ls.done = make(chan struct{})
	go e.acceptLoop(ls)
}

// acceptLoop accepts connections on ls and posts each to the next loop in turn. It
// ends when the listener is closed. Other accept errors (out of descriptors, for
// example) pause accepting for acceptBackoff and count as accept pauses.
func (e *Engine) acceptLoop(ls *listener) {
	defer close(ls.done)
	failing := false
	for {
		nc, err := ls.ln.Accept()
		l := e.loops[e.next.Add(1)%uint64(len(e.loops))]
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.stats.acceptPauses.Add(1)
			if !failing {
				e.cfg.Logger.Warn("accept failed", "err", err)
				failing = true
			}
			time.Sleep(acceptBackoff)
			continue
		}
		failing = false
		if !l.post(func() { l.addConn(nc, ls.h) }) {
			nc.Close()
		}
	}
}

func (ls *listener) close() {
	ls.ln.Close()
	if ls.file != nil {
		ls.file.Close()
	}
}

// ListenerFDs returns the descriptors of the open listening sockets (for handing to
// a new binary during an upgrade).
func (e *Engine) ListenerFDs() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var fds []int
	for _, ls := range e.lns {
		if ls.fd >= 0 {
			fds = append(fds, ls.fd)
		}
	}
	return fds
}

// closeListeners closes every listening socket and waits until their accept
// goroutines have ended.
func (e *Engine) closeListeners() {
	e.mu.Lock()
	lns := e.lns
	e.lns = nil
	e.mu.Unlock()
	for _, ls := range lns {
		ls.close()
	}
	for _, ls := range lns {
		if ls.done != nil {
			<-ls.done
		}
	}
}

// StopAccepting closes the listening sockets and leaves open connections alone:
// they are served until they close or Shutdown ends them. It is the first step of
// draining an old process after a binary upgrade, whose successor holds duplicates
// of the same sockets and keeps accepting on them. Safe from any goroutine; it
// returns once every connection accepted before has reached its loop. Listen after
// StopAccepting opens new sockets as usual.
func (e *Engine) StopAccepting() {
	e.closeListeners()
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started {
		return
	}
	for _, l := range e.loops {
		reached := make(chan struct{})
		if l.post(func() { close(reached) }) {
			<-reached
		}
	}
}

// Start launches the loops and the accept goroutines.
func (e *Engine) Start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.shutdown {
		return
	}
	e.started = true
	for _, l := range e.loops {
		go l.run()
	}
	for _, ls := range e.lns {
		e.startAccepting(ls)
	}
}

// Shutdown stops accepting, asks every connection's handler to finish (OnShutdown),
// waits until all connections are closed or ctx ends, then closes what is left and
// stops the loops. It returns ctx.Err() when the grace period cut connections.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	started := e.started
	e.shutdown = true
	e.mu.Unlock()
	e.closeListeners()
	if !started {
		return nil
	}
	for _, l := range e.loops {
		l.post(func() {
			l.drain = true
			l.eachConn(func(c *Conn) {
				if c.flags&fClosed == 0 {
					c.h.OnShutdown(c)
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
			l.post(func() { l.stop = true })
		}
	}
	for _, l := range e.loops {
		<-l.done
	}
	return err
}
