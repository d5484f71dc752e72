package config

import (
	"reflect"
	"runtime"
	"slices"
	"time"
)

// Config is a whole gale configuration. Values built by Parse, Load, Default
// and New have every default filled in; Durations are time.Duration values and
// sizes are int64 byte counts.
//
// A Config is a plain value: it is built and validated by one goroutine and is
// read-only once handed to the server, which may share it between loops.
type Config struct {
	// Workers is the number of event loops per process; 0 means one per CPU
	// (written "auto" in YAML).
	Workers int `yaml:"workers" conf:"auto"`
	// Processes is the number of worker processes (at least 1).
	Processes int `yaml:"processes"`
	// CPUAffinity says whether and where loops are pinned to CPUs.
	CPUAffinity CPUAffinity `yaml:"cpu_affinity"`
	// NUMA is NUMAAuto or NUMAOff.
	NUMA string `yaml:"numa" conf:"enum=auto|off"`
	// Engine is the loops' kernel interface on Linux: "epoll" (the default),
	// "io_uring" (refused at start where the kernel lacks it) or "auto" (io_uring
	// where the kernel allows it, else epoll); see engine.Config.Backend.
	Engine string `yaml:"engine" conf:"enum=auto|epoll|io_uring"`
	// Scheduling is the Linux scheduling policy of the serving process's threads:
	// SchedNormal (the default) or SchedBatch; see docs/config.md.
	Scheduling string `yaml:"scheduling" conf:"enum=normal|batch"`
	// ZeroCopy is the size from which a body held in memory and sent without a copy
	// (cached and shared bodies) goes with MSG_ZEROCOPY on the epoll engine and
	// IORING_OP_SEND_ZC on io_uring; 0 turns zero-copy off. See
	// engine.Config.ZeroCopy.
	ZeroCopy int64 `yaml:"zerocopy" conf:"size"`
	// Log configures the process logger.
	Log Log `yaml:"log"`
	// Timeouts bounds how long connections may take at each stage.
	Timeouts Timeouts `yaml:"timeouts"`
	// Limits bounds the size of requests.
	Limits Limits `yaml:"limits"`
	// Admin configures the admin listener (metrics, status, health).
	Admin Admin `yaml:"admin"`
	// Upstreams are the named groups of origin servers that proxy routes use.
	Upstreams map[string]*Upstream `yaml:"upstreams,omitempty"`
	// Servers are the virtual servers, each with its listeners and routes.
	Servers []Server `yaml:"servers"`
	// TCP are the layer-4 (TCP) proxies; see tcp.go.
	TCP []TCP `yaml:"tcp,omitempty"`

	// src remembers where each value came from so that Validate can report
	// positions; it is nil for configurations built in Go.
	src *source
}

// Values of Config.NUMA.
const (
	NUMAAuto = "auto" // place loops and memory by NUMA node when there is more than one
	NUMAOff  = "off"  // ignore NUMA topology
)

// Log configures the process logger.
type Log struct {
	// Level is one of "debug", "info", "warn" or "error".
	Level string `yaml:"level" conf:"enum=debug|info|warn|error"`
	// Format is LogAuto, LogText or LogJSON.
	Format string `yaml:"format" conf:"enum=auto|text|json"`
}

// Values of Config.Scheduling.
const (
	SchedNormal = "normal" // SCHED_OTHER, the kernel's default
	SchedBatch  = "batch"  // SCHED_BATCH: no wake-up preemption
)

// Values of Log.Format.
const (
	LogAuto = "auto" // text when standard error is a terminal, JSON otherwise
	LogText = "text"
	LogJSON = "json"
)

// Timeouts bounds how long a connection may spend in each stage.
type Timeouts struct {
	// Header is the time allowed to receive a request line and its headers.
	Header time.Duration `yaml:"header"`
	// Idle is how long a keep-alive connection may wait for its next request.
	Idle time.Duration `yaml:"idle"`
	// Body is the time allowed between two reads of a request body.
	Body time.Duration `yaml:"body"`
	// Write is the time allowed for a write to make progress.
	Write time.Duration `yaml:"write"`
	// Response is the longest wait for a handler to produce the next part of its
	// response once the request has been read.
	Response time.Duration `yaml:"response"`
	// ShutdownGrace is how long a stopping server lets requests finish.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// UpgradeGrace is how long an old process keeps long-lived connections
	// after a binary upgrade.
	UpgradeGrace time.Duration `yaml:"upgrade_grace"`
	// DeferAccept is how long the kernel may hold a new HTTP connection whose
	// client has sent nothing yet before handing it to gale (TCP_DEFER_ACCEPT,
	// whole seconds, rounded up; at most MaxDeferAccept); 0 hands every
	// connection over as soon as its handshake ends. TCP entries never defer.
	DeferAccept time.Duration `yaml:"defer_accept"`
}

// MaxDeferAccept is the longest accepted timeouts.defer_accept.
const MaxDeferAccept = time.Minute

// Limits bounds the size of requests. Sizes are in bytes.
type Limits struct {
	// RequestLine is the longest accepted request line.
	RequestLine int64 `yaml:"request_line" conf:"size"`
	// HeaderBytes is the largest accepted header section.
	HeaderBytes int64 `yaml:"header_bytes" conf:"size"`
	// HeaderFields is the largest accepted number of header fields.
	HeaderFields int `yaml:"header_fields"`
	// BodyBytes is the largest accepted request body.
	BodyBytes int64 `yaml:"body_bytes" conf:"size"`
}

// Server is one virtual server: the addresses it listens on and the routes
// its requests are matched against, in order.
type Server struct {
	// Name labels the server's metrics; "" means "server<N>" (N its index).
	Name string `yaml:"name"`
	// Listen holds host:port addresses; at least one is required.
	Listen []string `yaml:"listen"`
	// Routes are tried in order; the first that matches handles the request.
	Routes []Route `yaml:"routes"`
	// Protocols are the protocols spoken on the listen addresses: ProtoHTTP1, and
	// ProtoH2C for HTTP/2 over cleartext TCP by prior knowledge (RFC 9113 §3.3), told
	// apart from HTTP/1 by the connection preface when both are listed, and ProtoH2
	// for HTTP/2 over TLS chosen with ALPN (a server with a TLS section only; it is
	// offered only when listed, like nginx's "http2 on"). Default [http1].
	Protocols []string `yaml:"protocols"`
	// H2CUpgrade lets HTTP/1.1 requests switch a cleartext connection to HTTP/2
	// with "Upgrade: h2c" (RFC 7540 §3.2) when Protocols lists both http1 and h2c.
	// Never on proxy or websocket routes. Default true (a config built in Go: false).
	H2CUpgrade bool `yaml:"h2c_upgrade"`
	// TLS, when set, terminates TLS on every listen address (docs/tls.md).
	TLS *TLS `yaml:"tls,omitempty"`
	// AccessLog writes one line per request when its path is set.
	AccessLog AccessLog `yaml:"access_log"`
	// AcceptProxy lists the networks (load balancers) whose connections to the
	// server's addresses must start with a PROXY protocol header; see tcp.go.
	AcceptProxy []string `yaml:"accept_proxy,omitempty"`
}

// Values of Server.Protocols.
const (
	ProtoHTTP1 = "http1" // HTTP/1.0 and HTTP/1.1
	ProtoH2C   = "h2c"   // HTTP/2 over cleartext TCP, by prior knowledge
	ProtoH2    = "h2"    // HTTP/2 over TLS, negotiated with ALPN
)

// SetDefaults sets every field of s to its default: HTTP/1 only, h2c upgrades allowed
// once h2c is listed.
func (s *Server) SetDefaults() { *s = Server{Protocols: []string{ProtoHTTP1}, H2CUpgrade: true} }

// HasProtocol reports whether p is among the server's protocols.
func (s *Server) HasProtocol(p string) bool { return slices.Contains(s.Protocols, p) }

// Route pairs a match with exactly one action. Action fields are pointers
// tagged conf:"action"; exactly one of them is non-nil in a valid route.
type Route struct {
	// Name labels the route's metrics; "" means "route<N>" (N its index).
	Name string `yaml:"name"`
	// Match selects the requests this route handles.
	Match Match `yaml:"match"`
	// Respond answers with a fixed response.
	Respond *Respond `yaml:"respond,omitempty" conf:"action"`
	// Static serves files from a directory.
	Static *Static `yaml:"static,omitempty" conf:"action"`
	// Proxy forwards requests to an upstream.
	Proxy *Proxy `yaml:"proxy,omitempty" conf:"action"`
	// WebSocket accepts WebSocket handshakes and serves the connections.
	WebSocket *WebSocket `yaml:"websocket,omitempty" conf:"action"`
	// PubSub serves a publish/subscribe hub (config/pubsub.go).
	PubSub *PubSub `yaml:"pubsub,omitempty" conf:"action"`
}

// Action returns the YAML name of the route's action ("respond", "static")
// or "" when the route has none. It reports the first non-nil field tagged
// conf:"action", so new actions need no change here. A validated route has
// exactly one.
func (r *Route) Action() string {
	v := reflect.ValueOf(r).Elem()
	for _, f := range fieldsOf(v.Type()) {
		if f.opts.action && !v.Field(f.index).IsNil() {
			return f.name
		}
	}
	return ""
}

// Match selects requests. Every criterion that is set must hold; a Match with
// nothing set matches every request.
type Match struct {
	// Path matches request paths that start with it.
	Path string `yaml:"path,omitempty"`
	// PathExact matches only this exact request path.
	PathExact string `yaml:"path_exact,omitempty"`
	// Host matches the request host exactly, or any subdomain when written
	// "*.example.com"; it is compared without case.
	Host string `yaml:"host,omitempty"`
	// Methods matches any of these request methods (written "method").
	Methods []string `yaml:"method,omitempty"`
}

// Respond answers every matched request with a fixed response.
type Respond struct {
	// Status is the response status code (200-599).
	Status int `yaml:"status"`
	// Body is the response body.
	Body string `yaml:"body"`
	// Headers are added to the response.
	Headers map[string]string `yaml:"headers"`
}

// SetDefaults sets every field of r to its default.
func (r *Respond) SetDefaults() {
	*r = Respond{Status: 200, Headers: map[string]string{}}
}

// Static serves files below Root.
type Static struct {
	// Root is the directory served; Load makes it absolute against the
	// config file's directory.
	Root string `yaml:"root" conf:"path"`
	// Index names the files tried, in order, when a directory is requested.
	Index []string `yaml:"index"`
	// Browse lists directories that have no index file.
	Browse bool `yaml:"browse"`
	// Fallback is a path below Root served when the requested file does not
	// exist (for single-page applications); "" answers 404.
	Fallback string `yaml:"fallback"`
	// CacheControl is sent as the Cache-Control header when not empty.
	CacheControl string `yaml:"cache_control"`
	// FollowSymlinks is SymlinksNever, SymlinksInsideRoot or SymlinksAlways.
	FollowSymlinks string `yaml:"follow_symlinks" conf:"enum=never|inside_root|always"`
	// Dotfiles is DotfilesDeny, DotfilesAllow or DotfilesIgnore.
	Dotfiles string `yaml:"dotfiles" conf:"enum=deny|allow|ignore"`
	// OpenFileCache caches open file descriptors and their metadata.
	OpenFileCache OpenFileCache `yaml:"open_file_cache"`
}

// Values of Static.FollowSymlinks.
const (
	SymlinksNever      = "never"       // never follow a symbolic link
	SymlinksInsideRoot = "inside_root" // follow links whose target stays below root
	SymlinksAlways     = "always"      // follow every link
)

// Values of Static.Dotfiles.
const (
	DotfilesDeny   = "deny"   // answer 403 for paths with a segment starting with "."
	DotfilesAllow  = "allow"  // serve them like any other file
	DotfilesIgnore = "ignore" // answer 404, as if they did not exist
)

// SetDefaults sets every field of s to its default; Root stays empty.
func (s *Static) SetDefaults() {
	*s = Static{
		Index:          []string{"index.html"},
		FollowSymlinks: SymlinksInsideRoot,
		Dotfiles:       DotfilesIgnore,
	}
	s.OpenFileCache.SetDefaults()
}

// OpenFileCache configures the cache of open files of a static route.
type OpenFileCache struct {
	// Max is the largest number of cached files; 0 disables the cache.
	Max int `yaml:"max"`
	// Revalidate is how long a cached entry is used before it is checked
	// against the file system again.
	Revalidate time.Duration `yaml:"revalidate"`
}

// SetDefaults sets every field of o to its default.
func (o *OpenFileCache) SetDefaults() {
	*o = OpenFileCache{Max: 10000, Revalidate: time.Second}
}

// New returns a Config with every default set and no servers. Programs that
// build a configuration in Go start from it, add servers and call Validate.
func New() *Config {
	c := &Config{}
	c.SetDefaults()
	return c
}

// SetDefaults sets every global field of c to its default and removes all
// servers.
func (c *Config) SetDefaults() {
	*c = Config{
		Processes:   1,
		CPUAffinity: CPUAffinity{Mode: AffinityOff},
		NUMA:        NUMAAuto,
		Engine:      "epoll",
		Scheduling:  SchedNormal,
		ZeroCopy:    256 << 10,
		Log:         Log{Level: "info", Format: LogAuto},
		Timeouts: Timeouts{
			Header:        10 * time.Second,
			Idle:          75 * time.Second,
			Body:          60 * time.Second,
			Write:         60 * time.Second,
			Response:      60 * time.Second,
			ShutdownGrace: 30 * time.Second,
			UpgradeGrace:  60 * time.Second,
			DeferAccept:   time.Second,
		},
		Admin: Admin{Metrics: Metrics{Buckets: DefaultBuckets()}},
		Limits: Limits{
			RequestLine:  8 << 10,
			HeaderBytes:  64 << 10,
			HeaderFields: 100,
			BodyBytes:    10 << 20,
		},
	}
}

// Loops returns the number of event loops each process runs: Workers, or
// runtime.NumCPU() when Workers is 0 ("auto").
func (c *Config) Loops() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.NumCPU()
}

// Name returns the name the configuration was parsed under (the file path
// given to Load or the name given to Parse), or "" for one built in Go.
func (c *Config) Name() string {
	if c.src == nil {
		return ""
	}
	return c.src.name
}

// Text returns the YAML text the configuration was parsed from, or nil for
// one built in Go. A supervising parent hands it to the worker processes it
// starts, so that a worker restarted after a crash runs the configuration the
// others serve rather than whatever the file holds by then.
func (c *Config) Text() []byte {
	if c.src == nil {
		return nil
	}
	return c.src.text
}
