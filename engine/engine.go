// Package engine runs gale's event loops: one loop per core, each a goroutine
// (locked to its OS thread when pinned to a CPU or on io_uring, not otherwise)
// with its own poller, its own SO_REUSEPORT listening sockets, its own connections,
// timers and buffer caches. Nothing on the hot path takes a lock. Other goroutines
// reach a connection only by posting a closure to its loop (Loop.Post).
//
// A protocol binds to the engine through Handler: the engine calls it on the owning
// loop when a connection opens, when bytes arrive, when the peer half-closes, when
// queued output has drained, when the connection's timer fires and when it closes.
//
// On Linux the loops use epoll (edge-triggered) and non-blocking system calls, or
// io_uring (Config.Backend: multishot accept and receive with a provided-buffer
// ring, sends submitted with the loop's wait); on other systems a fallback built on the net package provides the same API so that the
// library and its tests work everywhere (performance is a Linux matter).
package engine

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// Handler receives a connection's events. Every method runs on the connection's loop
// and must not block. A handler is a protocol's value shared by all its connections
// (Listen, Dial, SetHandler): per-connection state goes in the connection's context.
// A per-connection handler value works too; the epoll engine numbers the handlers
// in use on each loop (at most 65536 distinct ones at a time) and must be able to
// compare them, as map keys.
type Handler interface {
	// OnOpen is called once, before any other method, when a connection is accepted.
	OnOpen(c *Conn)
	// OnData is called with the bytes that have arrived, preceded by any bytes a
	// previous call left unconsumed. in is only valid during the call. OnData returns
	// how many bytes it consumed; the engine keeps the rest (in a pooled buffer) and
	// passes them again, followed by new bytes, on the next call.
	OnData(c *Conn, in []byte) int
	// OnEOF is called when the peer has closed its sending side, once every byte it
	// sent before that has been passed to OnData; bytes OnData left unconsumed may
	// still be held (Unread), and are passed again when reading resumes. While
	// reading is paused, a FIN with nothing unread before it is reported at once,
	// and one behind bytes still in the socket once reading resumes and they have
	// been passed on. The handler decides whether to close now (Close) or after
	// pending output (CloseAfterFlush).
	OnEOF(c *Conn)
	// OnDrain is called after WantDrain once queued output has fallen below the
	// low-water mark (or the queue is empty). A handler that writes while Buffered() is
	// below LowWater therefore always has room when it is called.
	OnDrain(c *Conn)
	// OnTimeout is called when the timer set with SetTimeout expires.
	OnTimeout(c *Conn)
	// OnShutdown is called once for every open connection when the engine starts a
	// graceful shutdown; the handler closes idle connections and lets busy ones finish.
	OnShutdown(c *Conn)
	// OnClose is called exactly once when the connection is closed, with the reason
	// (nil for an orderly close by this side).
	OnClose(c *Conn, err error)
}

// NopHandler is a Handler that does nothing: OnData consumes everything and every
// other method returns at once. A protocol embeds it and implements only the events
// it needs.
type NopHandler struct{}

var (
	_ Handler      = NopHandler{}
	_ FlushHandler = NopHandler{}
)

// OnOpen does nothing.
func (NopHandler) OnOpen(*Conn) {}

// OnData consumes all of in.
func (NopHandler) OnData(_ *Conn, in []byte) int { return len(in) }

// OnEOF does nothing.
func (NopHandler) OnEOF(*Conn) {}

// OnDrain does nothing.
func (NopHandler) OnDrain(*Conn) {}

// OnTimeout does nothing.
func (NopHandler) OnTimeout(*Conn) {}

// OnShutdown does nothing.
func (NopHandler) OnShutdown(*Conn) {}

// OnClose does nothing.
func (NopHandler) OnClose(*Conn, error) {}

// OnFlushed does nothing (NopHandler is a FlushHandler, so an embedding handler
// may override it).
func (NopHandler) OnFlushed(*Conn) {}

// ReadNotifyHandler is implemented by a Handler that reads a connection's socket
// itself (Conn.SetReadNotify), for example to splice(2) it into a pipe.
type ReadNotifyHandler interface {
	// OnReadable is called, while read notification is on, when the socket may have
	// become readable (or the peer closed or failed). Readiness is edge-triggered:
	// the handler reads until EAGAIN, or calls PauseRead and later ResumeRead, which
	// brings another OnReadable.
	OnReadable(c *Conn)
}

// Config sets up an Engine. The zero value is usable: one loop per CPU, no pinning.
type Config struct {
	// Workers is the number of event loops; 0 means runtime.NumCPU().
	Workers int
	// CPUs, when not empty, pins loop i to CPUs[i%len(CPUs)].
	CPUs []int
	// Nodes, when not empty, binds loop i's read buffer to NUMA node
	// Nodes[i%len(Nodes)] (mbind on Linux); a negative entry leaves that loop's
	// buffer unbound. Meant together with CPUs that lie on the same nodes.
	Nodes []int
	// HighWater is the amount of queued output (bytes in memory) above which the
	// engine stops reading from a connection; default 256 KiB.
	HighWater int
	// LowWater is the level at or below which reading resumes, and below which OnDrain
	// fires; default 64 KiB.
	LowWater int
	// Logger receives engine-level events (accept errors, pinning); default slog.Default().
	Logger *slog.Logger
	// Backend chooses the Linux engine's kernel interface: BackendEpoll,
	// BackendIOURing (New fails with a *BackendError where the kernel refuses it) or
	// BackendAuto (io_uring where the kernel allows it, else epoll). Empty means the
	// GALE_ENGINE environment variable's value, else epoll; the portable engine
	// accepts every value but an explicit io_uring.
	Backend string
	// ZeroCopy is the size in bytes from which a memory segment queued with
	// WriteRef or WriteShared is sent with MSG_ZEROCOPY (epoll backend on Linux)
	// or IORING_OP_SEND_ZC (io_uring; the portable engine copies). 0 means
	// DefaultZeroCopy; a negative
	// value turns zero-copy off. A socket that refuses it, or whose sends the kernel
	// reports it copied anyway (loopback), goes back to copying.
	ZeroCopy int
}

// DefaultZeroCopy is the default ZeroCopy threshold (see docs/engine-and-server.md
// for how it was chosen).
const DefaultZeroCopy = 256 << 10

func (c *Config) fill() {
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.HighWater <= 0 {
		c.HighWater = 256 << 10
	}
	if c.LowWater <= 0 || c.LowWater > c.HighWater {
		c.LowWater = c.HighWater / 4
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ZeroCopy == 0 {
		c.ZeroCopy = DefaultZeroCopy
	}
}

// MaxUnconsumed is the most unconsumed input the engine keeps for one connection
// that is reading: a handler that leaves more behind in OnData is closed with
// ErrInputOverflow. A protocol that needs a whole message in one piece (an HTTP/1
// request head) must refuse larger ones itself.
const MaxUnconsumed = maxRetained

// Errors reported by the engine. They are connection-level: the connection they are
// reported for is closed.
var (
	// ErrClosed is returned by writes on a connection that is already closed.
	ErrClosed = errors.New("engine: connection closed")
	// ErrInputOverflow means a handler left more unconsumed input than the engine
	// buffers for one connection.
	ErrInputOverflow = errors.New("engine: unconsumed input exceeds the per-connection limit")
	// ErrFileShrank means a file being sent ended before the promised length.
	ErrFileShrank = errors.New("engine: file shrank while it was being sent")
	// ErrPipeShort means a pipe queued with SplicePipe ended before the promised length.
	ErrPipeShort = errors.New("engine: pipe ended before the promised length")
	// ErrShutdown is the close reason for connections cut at the end of the grace period.
	ErrShutdown = errors.New("engine: shut down")
	// ErrOutputQueued is returned by CloseWrite while output is still queued.
	ErrOutputQueued = errors.New("engine: output still queued")
	// ErrTimeout is the close reason a handler may use for a timed-out connection.
	ErrTimeout = errors.New("engine: timeout")
	// ErrWriteTimeout is the close reason for a connection whose queued output made
	// no progress for its write timeout (Conn.SetWriteTimeout).
	ErrWriteTimeout = errors.New("engine: write timeout: the peer accepted no output")
)

// DialError is the close reason (or Dial's result) for an outbound connection that
// did not connect. Err is the syscall error (os.SyscallError "connect" with
// ECONNREFUSED, ETIMEDOUT for the connect timeout, …), so errors.Is works on it.
type DialError struct {
	Addr netip.AddrPort
	Err  error
}

func (e *DialError) Error() string { return "engine: dial " + e.Addr.String() + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *DialError) Unwrap() error { return e.Err }

// Timeout reports whether the connect timed out.
func (e *DialError) Timeout() bool {
	if ne, ok := errors.AsType[net.Error](e.Err); ok && ne.Timeout() {
		return true
	}
	return errors.Is(e.Err, syscall.ETIMEDOUT)
}

// Stats are cumulative counters of one loop, readable from any goroutine.
type Stats struct {
	Accepted     uint64 // connections accepted
	Closed       uint64 // accepted connections closed (those of Loop.Dial are not counted)
	Active       int64  // accepted connections open now
	AcceptPauses uint64 // times accepting paused for lack of descriptors (EMFILE/ENFILE)
	BytesIn      uint64 // bytes read from sockets
	BytesOut     uint64 // bytes written to sockets, including sendfile
	// ZeroCopySends counts sends made with MSG_ZEROCOPY or IORING_OP_SEND_ZC;
	// ZeroCopyCopied counts those the kernel reported it copied after all
	// (loopback, no scatter-gather).
	ZeroCopySends, ZeroCopyCopied uint64
}

// loopStats is the loop-owned, atomically readable form of Stats.
type loopStats struct {
	accepted, closed, acceptPauses, bytesIn, bytesOut atomic.Uint64
	zcSends, zcCopied                                 atomic.Uint64
	active                                            atomic.Int64
}

func (s *loopStats) snapshot() Stats {
	return Stats{
		Accepted: s.accepted.Load(), Closed: s.closed.Load(), Active: s.active.Load(),
		AcceptPauses: s.acceptPauses.Load(), BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(),
		ZeroCopySends: s.zcSends.Load(), ZeroCopyCopied: s.zcCopied.Load(),
	}
}

// Add sums two Stats.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Accepted: s.Accepted + o.Accepted, Closed: s.Closed + o.Closed, Active: s.Active + o.Active,
		AcceptPauses: s.AcceptPauses + o.AcceptPauses, BytesIn: s.BytesIn + o.BytesIn, BytesOut: s.BytesOut + o.BytesOut,
		ZeroCopySends: s.ZeroCopySends + o.ZeroCopySends, ZeroCopyCopied: s.ZeroCopyCopied + o.ZeroCopyCopied,
	}
}

// ListenOptions are the per-listener settings of Engine.ListenWith and
// ListenFDsWith. The zero value is a plain listener.
type ListenOptions struct {
	// DeferAccept, when positive, lets the kernel hold a new connection until its
	// first bytes arrive, for up to this long in whole seconds rounded up
	// (TCP_DEFER_ACCEPT), before the loop accepts it; after that the connection is
	// accepted anyway. Only for protocols whose client speaks first (HTTP, TLS);
	// zero or negative turns it off, also on an inherited socket that had it.
	// Linux only: the portable engine ignores it.
	DeferAccept time.Duration
}
