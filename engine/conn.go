package engine

import (
	"sync"
	"time"

	"github.com/gale-server/gale/internal/os/pool"
)

// Connection flags; owned by the connection's loop. The flags both engines use are
// declared here; each engine declares its own from fPlatform on (conn_linux.go,
// conn_net.go).
const (
	fClosed          uint32 = 1 << iota // closed; no more callbacks
	fPaused                             // handler asked to stop reading
	fHiPaused                           // output above high water: reading stopped
	fDirty                              // in the loop's flush list
	fPending                            // in the loop's resume list
	fWantDrain                          // call OnDrain at low water
	fWantFlushed                        // call OnFlushed once the output queue is empty
	fCloseAfterFlush                    // close once output is flushed
	fNoLinger                           // with fCloseAfterFlush: close at once once flushed
	fDrop                               // with fCloseAfterFlush: close once flushed without reading on (DropAfterFlush)
	fLinger                             // write side shut; discarding input until EOF or timeout
	fEOF                                // the peer closed its sending side
	fBroken                             // output cannot be sent; closed at the end of the iteration
	fConnecting                         // an outbound connect is in progress (Loop.Dial)
	fOwnPacing                          // output above high water does not stop reading (SetOutputPausesRead)
	fDialed                             // made by Loop.Dial: not counted in Stats (which count clients)
	fPlatform                           // the first flag an engine declares for itself
)

// Conn is one TCP connection, accepted or dialed. It is owned by its loop: every
// method must be called on that loop (from a Handler callback or a closure passed
// to Loop.Post). An idle connection holds no buffer; the struct itself is kept
// small (80 bytes in the epoll engine). Every field is owned by the loop.
type Conn struct {
	connSys          // the engine's own part: descriptor, handler, peer (conn_linux.go, conn_net.go)
	flags     uint32 // f* bits
	tdeadline uint32 // timer tick relative to the wheel's base, 0 when not armed
	wto       uint32 // write timeout in milliseconds, 0 when off (SetWriteTimeout)
	loop      *Loop
	ctx       any
	in        inbuf // unconsumed input (a pooled buffer), nil when none
	out       *outq // queued output, nil when none
	tnext     *Conn // timing wheel links
	tprev     *Conn
}

// seg is one piece of queued output: memory (buf[off:]) or, when buf is nil, a file
// range or (pipe) bytes waiting in a pipe, read from file. A memory segment with a
// release function references the caller's bytes (WriteRef): it is neither pooled
// nor appended to. Owned by the connection's loop (in the portable engine a writer
// goroutine reads the segments it was handed, which the loop leaves alone).
type seg struct {
	buf     []byte
	off     int
	file    segFile
	foff    int64
	fn      int64
	release func()
	pipe    bool
	zc      bool   // epoll: sent (in part) with MSG_ZEROCOPY; released once send zseq completes
	zseq    uint32 // the number of the last zero-copy send that read from buf
}

// Loop is one event loop with its own connections, timers and buffer cache: in the
// epoll engine a locked OS thread with its own poller and listening sockets, in the
// portable engine a goroutine running posted closures. Fields without a lock note
// are owned by the loop's goroutine.
type Loop struct {
	loopSys // the engine's own part (loop_linux.go, loop_net.go)
	id      int
	eng     *Engine
	nconns  int
	cache   pool.Cache
	wheel   wheel
	now     time.Time
	nowNano int64
	dirty   []*Conn
	pending []*Conn
	later   []func() // Defer: run at the end of this iteration, before the flush
	outqs   []*outq  // free list
	drain   bool     // graceful shutdown in progress
	stop    bool
	iters   uint64    // loop iterations, for tests of the wake-up policy
	yields  uint64    // iterations that yielded to posting goroutines (YieldBeforeWait), for tests
	yield   bool      // YieldBeforeWait was called during this iteration
	stats   loopStats // atomic: read by any goroutine

	// closing is the connection whose OnClose runs now and unsent what its queue
	// still held when it closed (Conn.Unsent).
	closing *Conn
	unsent  int64

	mu      sync.Mutex // guards tasks and stopped (the epoll engine also wakes the poller under it; see Post)
	tasks   []func()   // guarded by mu
	stopped bool       // guarded by mu: the loop has ended and drops new closures
	spare   []func()   // loop-owned swap buffer for tasks
	done    chan struct{}
}
