package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/gale-server/gale/config"
)

// Exit statuses.
const (
	exitOK    = 0 // success
	exitError = 1 // invalid configuration or a server that failed
	exitUsage = 2 // bad command line
)

// runFunc serves cfg until ctx is done; app.Run in the real binary. New
// configurations arrive on config.Reloads(ctx).
type runFunc func(ctx context.Context, cfg *config.Config, logger *slog.Logger) error

// cli is one invocation of the gale command. Every field is set before main
// is called and only read afterwards.
type cli struct {
	stdout, stderr io.Writer
	terminal       bool                            // stderr is a terminal, for log.format auto
	run            runFunc                         // serves a configuration
	exit           func(int)                       // ends the process at once, on a second SIGINT, SIGTERM or SIGQUIT
	abort          func() bool                     // supervisor.Abort, asked before exit; nil: always exit
	buildInfo      func() (*debug.BuildInfo, bool) // debug.ReadBuildInfo, replaced in tests
	// workerAttrs returns what every log line of a worker process carries
	// (supervisor.WorkerLogAttrs: "worker", N); nil, or nil returned, outside
	// one. The lines the command logs itself (reloads, signals) carry them as
	// the server's do.
	workerAttrs func() []any
	// workerConfig returns, in a worker process, the configuration its
	// parent serves, parsed as the file at path, and how to load the one it
	// reloads (supervisor.WorkerConfig); all nil elsewhere, and with a nil
	// workerConfig, and the file is read.
	workerConfig func(path string) (cfg *config.Config, reload func() (*config.Config, error), err error)
}

const usage = `gale is a high-performance network server.

usage:
  gale                         serve the current directory on http://127.0.0.1:8080/
  gale serve -c FILE           run the configuration in FILE
  gale check -c FILE           validate FILE and print the effective configuration
  gale file-server [flags]     serve one directory (see gale file-server --help)
  gale reverse-proxy --from ADDR --to ADDR[,ADDR…]
                               forward every request to the given servers
  gale status [-c FILE]        print the counters of a running instance
  gale version                 print version information

Run "gale COMMAND --help" for a command's flags. The configuration format is
described in docs/config.md.
`

// commands are the subcommands main knows, for suggestions.
var commands = []string{"serve", "check", "file-server", "reverse-proxy", "version", "status", "help"}

// main runs the command line args (without the program name) and returns
// the exit status.
func (c *cli) main(args []string) int {
	if len(args) == 0 {
		return c.serveDefault()
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return c.serveCmd(rest)
	case "check":
		return c.checkCmd(rest)
	case "file-server":
		return c.fileServerCmd(rest)
	case "reverse-proxy":
		return c.reverseProxyCmd(rest)
	case "version":
		return c.versionCmd(rest)
	case "status":
		return c.statusCmd(rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, usage)
		return exitOK
	}
	hint := ""
	if s := config.Suggest(cmd, commands); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
	}
	fmt.Fprintf(c.stderr, "gale: unknown command %q%s\n\n%s", cmd, hint, usage)
	return exitUsage
}

// flags parses args with fs. It returns done with the exit status when
// parsing ends the command: --help prints the usage to stdout and succeeds,
// and a bad flag or a stray argument prints it to stderr and fails.
func (c *cli) flags(fs *flag.FlagSet, args []string, synopsis, about string) (status int, done bool) {
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.Usage = func() {
		fmt.Fprintf(&out, "usage: %s\n\n%s\n", synopsis, about)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(&out, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		fmt.Fprintf(&out, "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		err = errors.New("unexpected argument")
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.stdout.Write(out.Bytes())
		return exitOK, true
	case err != nil:
		c.stderr.Write(out.Bytes())
		return exitUsage, true
	}
	return 0, false
}

// configFlag parses the -c FILE flag that serve and check require, plus any
// flags extra defines.
func (c *cli) configFlag(args []string, name, synopsis, about string, extra func(*flag.FlagSet)) (file string, status int, done bool) {
	fs := flag.NewFlagSet("gale "+name, flag.ContinueOnError)
	fs.StringVar(&file, "c", "", "the configuration `FILE` (required)")
	fs.StringVar(&file, "config", "", "the same as -c `FILE`")
	if extra != nil {
		extra(fs)
	}
	if status, done := c.flags(fs, args, synopsis, about); done {
		return "", status, true
	}
	if file == "" {
		fmt.Fprintf(c.stderr, "gale %s: the -c FILE flag is required\n", name)
		return "", exitUsage, true
	}
	return file, 0, false
}

// load reads and validates a configuration file, printing every problem to
// stderr on failure.
func (c *cli) load(file string) (*config.Config, bool) {
	cfg, err := config.Load(file)
	if err != nil {
		c.printErrors(err)
		return nil, false
	}
	return cfg, true
}

// printErrors writes each problem of err on its own line: an ErrorList as
// FILE:LINE:COL lines, anything else prefixed with "gale: ".
func (c *cli) printErrors(err error) {
	var list config.ErrorList
	if !errors.As(err, &list) {
		fmt.Fprintf(c.stderr, "gale: %v\n", err)
		return
	}
	for _, e := range list {
		fmt.Fprintln(c.stderr, e.Error())
	}
	noun := "problems"
	if len(list) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(c.stderr, "gale: %d %s; configuration not loaded\n", len(list), noun)
}

// checkCmd runs gale check.
func (c *cli) checkCmd(args []string) int {
	quiet := false
	file, status, done := c.configFlag(args, "check", "gale check [-q] -c FILE",
		"Validate FILE. When it is valid, print the effective configuration, with every\n"+
			"default filled in, and exit 0; otherwise print each problem as FILE:LINE:COL and exit 1.",
		func(fs *flag.FlagSet) {
			fs.BoolVar(&quiet, "q", false, "print nothing when the configuration is valid")
		})
	if done {
		return status
	}
	cfg, ok := c.load(file)
	if !ok {
		return exitError
	}
	if !quiet {
		fmt.Fprintf(c.stdout, "# %s is valid; effective configuration:\n%s", file, cfg)
	}
	return exitOK
}

// serveCmd runs gale serve.
func (c *cli) serveCmd(args []string) int {
	file, status, done := c.configFlag(args, "serve", "gale serve -c FILE",
		"Run the configuration in FILE until SIGINT, SIGTERM or SIGQUIT (each a graceful\n"+
			"stop). SIGHUP reads FILE again and applies it if it is valid; if not, the problems\n"+
			"are logged and the running configuration stays.", nil)
	if done {
		return status
	}
	cfg, reload, ok := c.loadServed(file)
	if !ok {
		return exitError
	}
	return c.serve(cfg, "", reload)
}

// loadServed loads the configuration gale serve runs and returns how to load
// it again on SIGHUP: in a worker process, the one its parent serves and
// handed it; otherwise the file.
func (c *cli) loadServed(file string) (*config.Config, func() (*config.Config, error), bool) {
	if c.workerConfig != nil {
		cfg, reload, err := c.workerConfig(file)
		if err != nil {
			c.printErrors(err)
			return nil, nil, false
		}
		if cfg != nil {
			return cfg, reload, true
		}
	}
	cfg, ok := c.load(file)
	return cfg, func() (*config.Config, error) { return config.Load(file) }, ok
}

// serveDefault runs the embedded default configuration.
func (c *cli) serveDefault() int {
	cfg := config.Default()
	return c.serve(cfg, banner(cfg), nil)
}

// fileServerConfig builds the configuration of gale file-server: one server
// on listen whose only route serves root.
func fileServerConfig(listen, root string, browse bool) (*config.Config, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	static := &config.Static{}
	static.SetDefaults()
	static.Root = abs
	static.Browse = browse
	cfg := config.New()
	cfg.Servers = []config.Server{{
		Listen: []string{listen},
		Routes: []config.Route{{Match: config.Match{Path: "/"}, Static: static}},
	}}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// fileServerCmd runs gale file-server.
func (c *cli) fileServerCmd(args []string) int {
	fs := flag.NewFlagSet("gale file-server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "the `host:port` to listen on")
	root := fs.String("root", ".", "the `directory` to serve")
	browse := fs.Bool("browse", false, "list directories that have no index.html")
	if status, done := c.flags(fs, args, "gale file-server [--listen ADDR] [--root DIR] [--browse]",
		"Serve the files below one directory, with the defaults of docs/config.md."); done {
		return status
	}
	cfg, err := fileServerConfig(*listen, *root, *browse)
	if err != nil {
		var list config.ErrorList
		if !errors.As(err, &list) {
			fmt.Fprintf(c.stderr, "gale file-server: %v\n", err)
			return exitError
		}
		for _, e := range list {
			fmt.Fprintf(c.stderr, "gale file-server: %s: %s\n", flagFor(e.Path), e.Msg)
		}
		return exitError
	}
	return c.serve(cfg, banner(cfg), nil)
}

// flagFor names the file-server flag behind a configuration path.
func flagFor(path string) string {
	switch {
	case strings.Contains(path, ".listen"):
		return "--listen"
	case strings.Contains(path, ".static.root"):
		return "--root"
	}
	return path
}

// banner is the line printed when gale serves one directory.
func banner(cfg *config.Config) string {
	s := cfg.Servers[0]
	return fmt.Sprintf("gale serving %s on %s", s.Routes[0].Static.Root, listenURL(s.Listen[0]))
}

// listenURL turns a listen address into a URL to open; an empty host is
// shown as 0.0.0.0.
func listenURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// serve runs cfg until a terminating signal. reload, when not nil, loads a
// new configuration on SIGHUP.
func (c *cli) serve(cfg *config.Config, bannerLine string, reload func() (*config.Config, error)) int {
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.Log.Level))
	logger := newLogger(cfg.Log.Format, c.stderr, c.terminal, level)
	if bannerLine != "" {
		fmt.Fprintln(c.stdout, bannerLine)
	}
	// The server gets logger and adds the worker's attributes itself (c.run
	// reads them from the environment); the command's own lines get them here.
	run := logger
	if c.workerAttrs != nil {
		if attrs := c.workerAttrs(); len(attrs) > 0 {
			logger = logger.With(attrs...)
		}
	}
	r := &reloader{load: reload, ch: make(chan *config.Config, 1), refused: make(chan error, 4), logger: logger, level: level}
	ctx, stop := watchSignals(context.Background(), r.reload, func() {
		if c.abort != nil && !c.abort() {
			logger.Warn("another termination signal; still stopping gracefully (a worker process stops at once only when its parent kills it)")
			return
		}
		logger.Error("second termination signal; exiting without waiting for connections")
		c.exit(exitError)
	})
	defer stop()
	ctx = config.WithRefusedReloads(config.WithReloads(ctx, r.ch), r.refused)
	if err := c.run(ctx, cfg, run); err != nil {
		logger.Error("gale stopped", "error", err)
		return exitError
	}
	return exitOK
}

// reloader answers SIGHUP: it loads and validates the configuration again
// and hands it to the server through ch. It runs on the signal goroutine
// only.
type reloader struct {
	load func() (*config.Config, error) // nil when there is no file to read again
	ch   chan *config.Config            // buffered (1): the newest configuration not yet taken by the server
	// refused carries the error of each configuration refused as invalid to the
	// server, which lists it with its reloads (buffered; one the server has not
	// taken in time is only logged).
	refused chan error
	logger  *slog.Logger
	level   *slog.LevelVar // the logger's level, updated by a successful reload
}

// reload loads the configuration again; a valid one replaces any that the
// server has not taken yet, an invalid one is logged error by error.
func (r *reloader) reload() {
	if r.load == nil {
		r.logger.Info("SIGHUP ignored: gale is not running from a configuration file")
		return
	}
	cfg, err := r.load()
	if err != nil {
		var list config.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				r.logger.Error("reload: invalid configuration", "error", e.Error())
			}
		} else {
			r.logger.Error("reload: cannot read configuration", "error", err)
		}
		r.logger.Error("reload failed; the running configuration stays")
		select {
		case r.refused <- err:
		default:
		}
		return
	}
	for {
		select {
		case r.ch <- cfg:
			r.level.Set(logLevel(cfg.Log.Level))
			r.logger.Info("reload: configuration is valid; applying it", "file", cfg.Name())
			return
		default:
			// A configuration the server has not taken yet is stale now.
			select {
			case <-r.ch:
			default:
			}
		}
	}
}

// logLevel maps log.level to a slog level; Validate guarantees the name.
func logLevel(name string) slog.Level {
	switch name {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// newLogger returns the process logger writing to w: text for format "text",
// or "auto" on a terminal, and JSON otherwise.
func newLogger(format string, w io.Writer, terminal bool, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == config.LogText || format == config.LogAuto && terminal {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	opts.ReplaceAttr = durationText
	return slog.New(slog.NewJSONHandler(w, opts))
}

// durationText writes a time.Duration attribute of a JSON log line as the text
// the text format and the configuration use ("30s", "1.5ms"), not as a count of
// nanoseconds (30000000000), which reads as a different unit to anyone who
// does not know Go.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// version is the release, set with -ldflags "-X main.version=v1.2.3"; when
// empty, the module version from the build information is used.
var version = ""

// versionCmd runs gale version.
func (c *cli) versionCmd(args []string) int {
	fs := flag.NewFlagSet("gale version", flag.ContinueOnError)
	if status, done := c.flags(fs, args, "gale version",
		"Print gale's version, the Go version it was built with and its source commit."); done {
		return status
	}
	bi, ok := c.buildInfo()
	fmt.Fprint(c.stdout, versionText(version, bi, ok))
	return exitOK
}

// releaseName returns the release gale version prints, for gale_build_info
// and /status.json.
func releaseName(bi *debug.BuildInfo, ok bool) string {
	return strings.TrimPrefix(strings.SplitN(versionText(version, bi, ok), "\n", 2)[0], "gale ")
}

// versionText formats the version report from the release string and the
// binary's build information.
func versionText(release string, bi *debug.BuildInfo, ok bool) string {
	goVersion := runtime.Version()
	commit := "unknown"
	if ok {
		if release == "" {
			release = bi.Main.Version
		}
		goVersion = bi.GoVersion
		var rev, when, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			commit = rev
			if when != "" {
				commit += " (" + when + ")"
			}
			if modified == "true" {
				commit += " with uncommitted changes"
			}
		}
	}
	if release == "" {
		release = "(devel)"
	}
	return fmt.Sprintf("gale %s\ngo %s %s/%s\ncommit %s\n", release, goVersion, runtime.GOOS, runtime.GOARCH, commit)
}
