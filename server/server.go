// Package server binds the HTTP/1.1 protocol core (package http1) to engine
// connections and offers gale's native Handler API: handlers run inline on the
// connection's event loop, see the request as views into the loop's read buffer and
// write the response through a Ctx that does not allocate per request in the common
// case. Handlers that may block run on a bounded goroutine pool (see Pool and the
// net/http adapter in package server/nethttp) and post their response back to the
// loop.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/http2"
)

// Handler serves one request inline on the connection's event loop. It must not
// block. It either completes the response before returning (Respond, End) or calls
// Ctx.Detach and completes it later on the loop.
type Handler interface {
	ServeGale(c *Ctx)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(c *Ctx)

// ServeGale calls f(c).
func (f HandlerFunc) ServeGale(c *Ctx) { f(c) }

// Options configure a Server. Zero durations and limits take the documented defaults.
type Options struct {
	// Handler serves every request; it may be swapped later with SetHandler.
	Handler Handler
	// Workers is the number of event loops (0: one per CPU).
	Workers int
	// Engine chooses the loops' kernel interface (engine.Config.Backend: "epoll",
	// "io_uring", "auto"; empty: GALE_ENGINE or epoll).
	Engine string
	// ZeroCopy is engine.Config.ZeroCopy: the segment size from which shared bodies
	// go with MSG_ZEROCOPY (0: the engine's default, negative: off).
	ZeroCopy int
	// CPUs pins loop i to CPUs[i%len(CPUs)] when not empty.
	CPUs []int
	// Nodes binds loop i's read buffer to NUMA node Nodes[i%len(Nodes)] when
	// not empty (see engine.Config.Nodes).
	Nodes []int
	// Limits bound request heads and bodies (defaults: http1.DefaultLimits()).
	Limits http1.Limits
	// HeaderTimeout bounds the time to receive a request head (default 10s).
	HeaderTimeout time.Duration
	// IdleTimeout bounds a keep-alive connection's wait for its next request (default 75s).
	IdleTimeout time.Duration
	// BodyTimeout bounds the wait between two reads of a request body (default 60s).
	BodyTimeout time.Duration
	// WriteTimeout bounds the wait for the client to accept queued output (default 60s).
	WriteTimeout time.Duration
	// ResponseTimeout bounds the wait for a handler that went asynchronous (returned
	// from ServeGale without ending its response) to produce output, once the request
	// has been read: it runs from the end of the request, and again from each write of
	// the handler (so a streaming handler making progress is never cut). When it
	// expires the client gets 504 if nothing was sent yet, else the connection closes;
	// either way the connection is not reused (default 60s). A handler may override
	// it per request with Ctx.SetResponseTimeout.
	ResponseTimeout time.Duration
	// DeferAccept is how long the kernel may hold a new connection whose client has
	// sent nothing yet before the server accepts it (TCP_DEFER_ACCEPT on every
	// listener of this server, in whole seconds rounded up): HTTP and TLS clients
	// speak first, so a connection usually arrives with its request and is served
	// without a wake-up of its own. Default 1s; negative: off (engine.ListenOptions).
	DeferAccept time.Duration
	// ServerName is sent in the Server header; "-" sends none. Default (empty) "gale".
	ServerName string
	// HighWater and LowWater bound queued output per connection (engine defaults).
	HighWater, LowWater int
	// Logger receives server-level events (default slog.Default()).
	Logger *slog.Logger
}

func (o *Options) fill() {
	if o.Limits == (http1.Limits{}) {
		o.Limits = http1.DefaultLimits()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.HeaderTimeout, 10*time.Second)
	def(&o.IdleTimeout, 75*time.Second)
	def(&o.BodyTimeout, 60*time.Second)
	def(&o.WriteTimeout, 60*time.Second)
	def(&o.ResponseTimeout, 60*time.Second)
	if o.DeferAccept == 0 {
		o.DeferAccept = time.Second
	}
	if o.ServerName == "" {
		o.ServerName = "gale"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Server is an HTTP/1.1 server on gale's engine.
type Server struct {
	opts    Options
	eng     *engine.Engine
	loops   []*loopState // index = loop ID; each owned by its loop
	addrs   []string
	conns   *connHandler // the default listener handler (Options.Handler)
	serverH []byte       // rendered "Server: name\r\n"
	wrap    AcceptWrap   // wraps the handlers of new listeners; owned by the goroutine that calls Listen*
	// draining is set when Shutdown starts; responses then close their connection.
	draining atomic.Bool
}

type handlerBox struct{ h Handler }

// New creates a server and its engine; call Listen and Start.
func New(opts Options) (*Server, error) {
	opts.fill()
	if opts.Handler == nil {
		return nil, fmt.Errorf("server: Options.Handler is required")
	}
	eng, err := engine.New(engine.Config{Workers: opts.Workers, CPUs: opts.CPUs, Nodes: opts.Nodes, HighWater: opts.HighWater, LowWater: opts.LowWater, Logger: opts.Logger, Backend: opts.Engine, ZeroCopy: opts.ZeroCopy})
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, eng: eng}
	if opts.ServerName != "-" {
		s.serverH = []byte("Server: " + opts.ServerName + "\r\n")
	}
	for _, l := range eng.Loops() {
		s.loops = append(s.loops, newLoopState(s, l))
	}
	s.conns = &connHandler{srv: s}
	s.conns.handler.Store(&handlerBox{opts.Handler})
	return s, nil
}

// Listener is one listening address with its own handler (a virtual server).
type Listener struct {
	Addr string // bound address
	ch   *connHandler
	dp   *dispatcher // nil unless made by ListenDispatch
}

// SetHandler swaps the listener's handler: requests that start afterwards use h,
// requests in flight finish with the old one, connections stay open.
func (l *Listener) SetHandler(h Handler) { l.ch.handler.Store(&handlerBox{h}) }

// Handler returns the listener's current handler.
func (l *Listener) Handler() Handler { return l.ch.handler.Load().h }

// ListenHandler adds a listening address served by its own handler.
func (s *Server) ListenHandler(addr string, h Handler) (*Listener, error) {
	ch := &connHandler{srv: s}
	ch.handler.Store(&handlerBox{h})
	bound, err := s.eng.ListenWith(addr, s.accepting(ch), s.listenOpts())
	if err != nil {
		return nil, err
	}
	s.addrs = append(s.addrs, bound)
	return &Listener{Addr: bound, ch: ch}, nil
}

// ListenFDsHandler serves inherited listening sockets with their own handler.
func (s *Server) ListenFDsHandler(fds []int, h Handler) (*Listener, error) {
	ch := &connHandler{srv: s}
	ch.handler.Store(&handlerBox{h})
	if err := s.eng.ListenFDsWith(fds, s.accepting(ch), s.listenOpts()); err != nil {
		return nil, err
	}
	return &Listener{ch: ch}, nil
}

// listenOpts are the engine options of the server's listeners.
func (s *Server) listenOpts() engine.ListenOptions {
	return engine.ListenOptions{DeferAccept: s.opts.DeferAccept}
}

// Listen adds a listening address ("host:port") and returns the bound address.
func (s *Server) Listen(addr string) (string, error) {
	bound, err := s.eng.Listen(addr, s.accepting(s.conns))
	if err != nil {
		return "", err
	}
	s.addrs = append(s.addrs, bound)
	return bound, nil
}

// ListenFDs serves inherited listening sockets.
func (s *Server) ListenFDs(fds []int) error {
	return s.eng.ListenFDsWith(fds, s.accepting(s.conns), s.listenOpts())
}

// Addr returns the first bound address.
func (s *Server) Addr() string {
	if len(s.addrs) == 0 {
		return ""
	}
	return s.addrs[0]
}

// Addrs returns every bound address.
func (s *Server) Addrs() []string { return s.addrs }

// Engine exposes the underlying engine (stats, listener descriptors, Post).
func (s *Server) Engine() *engine.Engine { return s.eng }

// Start runs the event loops.
func (s *Server) Start() { s.eng.Start() }

// SetHandler swaps the handler. Requests already being served finish with the old
// one; every request that starts afterwards uses the new one (the reload path).
func (s *Server) SetHandler(h Handler) { s.conns.handler.Store(&handlerBox{h}) }

// Shutdown stops accepting, closes idle keep-alive connections, lets in-flight
// requests finish until ctx ends, then closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	return s.eng.Shutdown(ctx)
}

// StopAccepting closes the listening sockets and puts the server in draining
// mode without ending any connection: every response from now on carries
// Connection: close and closes its connection once written, so busy clients
// reconnect (to the new process, during a binary upgrade) right after a
// complete response, never in the middle of one. Idle keep-alive connections
// stay until their next request, their idle timeout or Shutdown.
func (s *Server) StopAccepting() {
	s.draining.Store(true)
	s.eng.StopAccepting()
}

// Draining reports whether Shutdown or StopAccepting has begun (readiness
// probes answer "not ready" from then on).
func (s *Server) Draining() bool { return s.draining.Load() }

// Stats returns the engine counters plus served requests.
func (s *Server) Stats() Stats {
	st := Stats{Stats: s.eng.Stats()}
	for _, ls := range s.loops {
		st.Requests += ls.requests.Load()
		st.BadRequests += ls.badRequests.Load()
		st.FileReadBytes += ls.fileReadBytes.Load()
		st.Done += ls.done.Load()
		st.Reading += ls.reading.Load()
		st.HTTP2.add(ls)
	}
	// An HTTP/2 field section above the header limits is answered 431 before any
	// handler, as HTTP/1.1's too-large head is: it is a bad request too.
	st.BadRequests += st.HTTP2.Glitches[http2.GlitchHeaderList]
	return st
}

// Stats are cumulative server counters.
type Stats struct {
	engine.Stats
	Requests    uint64 // requests whose head was parsed
	BadRequests uint64 // requests rejected with a 4xx/5xx by the protocol layer (HTTP/2's 431 included)
	// Done counts requests whose response ended or whose connection closed
	// first; Requests-Done are in progress (nginx's "writing" connections).
	Done uint64
	// Reading is the number of connections with a partial request head now.
	Reading int64
	// FileReadBytes counts file body bytes read with pread and written as memory,
	// on streams that cannot use sendfile(2) (see FilePump).
	FileReadBytes uint64
	// HTTP2 counts HTTP/2 connections and protocol events.
	HTTP2 HTTP2Stats
}
