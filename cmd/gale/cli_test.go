package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
)

// testCLI returns a cli whose output goes to buffers and whose server is run.
func testCLI(run runFunc) (*cli, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	c := &cli{
		stdout: &stdout, stderr: &stderr, run: run,
		exit:      func(code int) { panic("exit called") },
		buildInfo: func() (*debug.BuildInfo, bool) { return nil, false },
	}
	return c, &stdout, &stderr
}

func noRun(t *testing.T) runFunc {
	return func(context.Context, *config.Config, *slog.Logger) error {
		t.Error("the server was started")
		return nil
	}
}

// writeFile writes a file below dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodConfig = "servers:\n  - listen: [\"127.0.0.1:0\"]\n    routes:\n      - static: {root: .}\n"
const badConfig = "wokers: 2\nservers:\n  - listen: [\"127.0.0.1:99999\"]\n    routes:\n      - respond: {status: 99}\n"

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", goodConfig)
	bad := writeFile(t, dir, "bad.yaml", badConfig)
	// What serve cannot bind, check refuses: a host that is no IP literal, and one
	// address spelled two ways for two servers (SO_REUSEPORT would split connections).
	listens := writeFile(t, dir, "listens.yaml", "servers:\n"+
		"  - listen: [\"999.1.1.1:80\"]\n    routes: [{respond: {}}]\n"+
		"  - listen: [\"127.0.0.1:19485\"]\n    routes: [{respond: {}}]\n"+
		"  - listen: [\"localhost:19485\"]\n    routes: [{respond: {}}]\n"+
		"  - listen: [\"0.0.0.0:19486\"]\n    routes: [{respond: {}}]\n"+
		"  - listen: [\"127.0.0.1:19486\"]\n    routes: [{respond: {}}]\n")
	tests := []struct {
		name           string
		args           []string
		status         int
		stdout, stderr string // substrings; "" means the stream must be empty
	}{
		{"valid", []string{"check", "-c", good}, 0, "# " + good + " is valid; effective configuration:\nworkers: auto\n", ""},
		{"valid long flag", []string{"check", "--config=" + good}, 0, "root: " + dir + "\n", ""},
		{"quiet", []string{"check", "-q", "-c", good}, 0, "", ""},
		{"invalid", []string{"check", "-c", bad}, 1, "", bad + `:1:1: unknown key "wokers" (did you mean "workers"?)` + "\n" +
			bad + `:3:14: servers[0].listen[0]: invalid port "99999" in listen address "127.0.0.1:99999": expected a number from 0 to 65535` + "\n" +
			bad + `:5:27: servers[0].routes[0].respond.status: invalid status 99: expected a final status code from 200 to 599` + "\n" +
			"gale: 3 problems; configuration not loaded\n"},
		{"listen addresses", []string{"check", "-c", listens}, 1, "", listens + `:2:14: servers[0].listen[0]: invalid host "999.1.1.1"` + "" +
			` in listen address "999.1.1.1:80": expected an IP address, localhost or nothing (gale listens on literal addresses, host names are not resolved)` + "\n" +
			listens + `:6:14: servers[2].listen[0]: address localhost:19485 is already used by servers[1].listen[0] (127.0.0.1:19485); serve several hosts from one server with match.host` + "\n" +
			listens + `:10:14: servers[4].listen[0]: address 127.0.0.1:19486 overlaps 0.0.0.0:19486 of servers[3].listen[0]: connections would be split between the two servers; serve several hosts from one server with match.host` + "\n" +
			"gale: 3 problems; configuration not loaded\n"},
		{"missing file", []string{"check", "-c", filepath.Join(dir, "nope.yaml")}, 1, "", "gale: open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory\n"},
		{"no -c", []string{"check"}, 2, "", "gale check: the -c FILE flag is required\n"},
		{"bad flag", []string{"check", "-x"}, 2, "", "flag provided but not defined: -x\nusage: gale check [-q] -c FILE"},
		{"stray argument", []string{"check", "-c", good, "extra"}, 2, "", "unexpected argument \"extra\"\nusage: gale check"},
		{"help", []string{"check", "--help"}, 0, "usage: gale check [-q] -c FILE\n\nValidate FILE.", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, stdout, stderr := testCLI(noRun(t))
			if got := c.main(tt.args); got != tt.status {
				t.Errorf("exit status %d, want %d; stderr:\n%s", got, tt.status, stderr)
			}
			for _, s := range []struct {
				name, got, want string
			}{{"stdout", stdout.String(), tt.stdout}, {"stderr", stderr.String(), tt.stderr}} {
				if s.want == "" && s.got != "" || !strings.Contains(s.got, s.want) {
					t.Errorf("%s:\n%s\nwant it to contain:\n%s", s.name, s.got, s.want)
				}
			}
		})
	}
}

func TestHelpAndUsage(t *testing.T) {
	for _, cmd := range []string{"serve", "check", "file-server", "version"} {
		for _, flag := range []string{"-h", "--help"} {
			c, stdout, stderr := testCLI(noRun(t))
			if got := c.main([]string{cmd, flag}); got != 0 || !strings.HasPrefix(stdout.String(), "usage: gale "+cmd) || stderr.Len() != 0 {
				t.Errorf("gale %s %s: status %d, stdout %q, stderr %q", cmd, flag, got, stdout, stderr)
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		c, stdout, _ := testCLI(noRun(t))
		if got := c.main(args); got != 0 || !strings.Contains(stdout.String(), "gale serve -c FILE") {
			t.Errorf("gale %v: status %d, stdout %q", args, got, stdout)
		}
	}
	c, _, stderr := testCLI(noRun(t))
	if got := c.main([]string{"srve"}); got != 2 || !strings.HasPrefix(stderr.String(), "gale: unknown command \"srve\" (did you mean \"serve\"?)\n") {
		t.Errorf("unknown command: status %d, stderr %q", got, stderr)
	}
	c, _, stderr = testCLI(noRun(t))
	if got := c.main([]string{"xyzzy"}); got != 2 || !strings.HasPrefix(stderr.String(), "gale: unknown command \"xyzzy\"\n") {
		t.Errorf("unknown command without a likely one: status %d, stderr %q", got, stderr)
	}
	for _, cmd := range []string{"check", "serve"} { // -config names its argument as -c does
		c, stdout, _ := testCLI(noRun(t))
		if c.main([]string{cmd, "--help"}); !strings.Contains(stdout.String(), "-config FILE") {
			t.Errorf("gale %s --help lacks -config FILE:\n%s", cmd, stdout)
		}
	}
	c, _, stderr = testCLI(noRun(t))
	if got := c.main([]string{"serve"}); got != 2 || stderr.String() != "gale serve: the -c FILE flag is required\n" {
		t.Errorf("serve without -c: status %d, stderr %q", got, stderr)
	}
	c, _, stderr = testCLI(noRun(t))
	if got := c.main([]string{"version", "x"}); got != 2 || !strings.Contains(stderr.String(), "unexpected argument") {
		t.Errorf("version x: status %d, stderr %q", got, stderr)
	}
}

// captureRun returns a runFunc that records the configuration it is given
// and returns err.
func captureRun(got **config.Config, err error) runFunc {
	return func(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
		*got = cfg
		if logger == nil || config.Reloads(ctx) == nil {
			panic("run called without a logger or a reload channel")
		}
		return err
	}
}

func TestServeDefault(t *testing.T) {
	var cfg *config.Config
	c, stdout, _ := testCLI(captureRun(&cfg, nil))
	if got := c.main(nil); got != 0 {
		t.Fatalf("status %d", got)
	}
	wd, _ := os.Getwd()
	if want := "gale serving " + wd + " on http://127.0.0.1:8080/\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	if cfg == nil || cfg.Name() != config.DefaultName || !cfg.Servers[0].Routes[0].Static.Browse {
		t.Errorf("ran %v, want the default configuration", cfg)
	}
}

func TestServeFile(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", goodConfig)
	var cfg *config.Config
	c, stdout, _ := testCLI(captureRun(&cfg, nil))
	if got := c.main([]string{"serve", "-c", good}); got != 0 {
		t.Fatalf("status %d", got)
	}
	if cfg == nil || cfg.Name() != good || cfg.Servers[0].Routes[0].Static.Root != dir || stdout.Len() != 0 {
		t.Errorf("ran %v with stdout %q", cfg, stdout)
	}

	bad := writeFile(t, dir, "bad.yaml", badConfig)
	c, _, stderr := testCLI(noRun(t))
	if got := c.main([]string{"serve", "-c", bad}); got != 1 || !strings.Contains(stderr.String(), bad+":1:1: unknown key") {
		t.Errorf("invalid file: status %d, stderr %q", got, stderr)
	}

	c, _, stderr = testCLI(captureRun(&cfg, errors.New("bind: address already in use")))
	c.terminal = true
	if got := c.main([]string{"serve", "-c", good}); got != 1 || !strings.Contains(stderr.String(), `msg="gale stopped" error="bind: address already in use"`) {
		t.Errorf("failing server: status %d, stderr %q", got, stderr)
	}
}

func TestFileServer(t *testing.T) {
	dir := t.TempDir()
	var cfg *config.Config
	c, stdout, _ := testCLI(captureRun(&cfg, nil))
	if got := c.main([]string{"file-server", "--listen", "127.0.0.1:0", "--root", dir, "--browse"}); got != 0 {
		t.Fatalf("status %d", got)
	}
	if want := "gale serving " + dir + " on http://127.0.0.1:0/\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	st := cfg.Servers[0].Routes[0].Static
	if cfg.Servers[0].Listen[0] != "127.0.0.1:0" || st.Root != dir || !st.Browse || st.Dotfiles != config.DotfilesIgnore {
		t.Errorf("built %v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}

	c, stdout, _ = testCLI(captureRun(&cfg, nil))
	if got := c.main([]string{"file-server", "--listen=:0"}); got != 0 || !strings.HasSuffix(stdout.String(), " on http://0.0.0.0:0/\n") || cfg.Servers[0].Routes[0].Static.Browse {
		t.Errorf("status %d, stdout %q", got, stdout)
	}

	c, _, stderr := testCLI(noRun(t))
	if got := c.main([]string{"file-server", "--listen", "127.0.0.1:99999", "--root", filepath.Join(dir, "missing")}); got != 1 {
		t.Errorf("status %d", got)
	}
	want := "gale file-server: --listen: invalid port \"99999\" in listen address \"127.0.0.1:99999\": expected a number from 0 to 65535\n" +
		"gale file-server: --root: root " + filepath.Join(dir, "missing") + ": no such file or directory\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
}

func TestVersionText(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0f637a8abc"}, {Key: "vcs.time", Value: "2025-11-25T09:04:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		release string
		bi      *debug.BuildInfo
		ok      bool
		want    string
	}{
		{"", bi, true, "gale v0.3.0\ngo go1.26.8 " + platform + "\ncommit 0f637a8abc (2025-11-25T09:04:00Z) with uncommitted changes\n"},
		{"v1.0.0", bi, true, "gale v1.0.0\ngo go1.26.8 " + platform + "\ncommit 0f637a8abc (2025-11-25T09:04:00Z) with uncommitted changes\n"},
		{"", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "(devel)"}}, true, "gale (devel)\ngo go1.26.1 " + platform + "\ncommit unknown\n"},
		{"", nil, false, "gale (devel)\ngo " + runtime.Version() + " " + platform + "\ncommit unknown\n"},
	}
	for _, tt := range tests {
		if got := versionText(tt.release, tt.bi, tt.ok); got != tt.want {
			t.Errorf("versionText(%q) =\n%s\nwant\n%s", tt.release, got, tt.want)
		}
	}
	c, stdout, _ := testCLI(noRun(t))
	c.buildInfo = func() (*debug.BuildInfo, bool) { return bi, true }
	if got := c.main([]string{"version"}); got != 0 || !strings.HasPrefix(stdout.String(), "gale v0.3.0\n") {
		t.Errorf("gale version: status %d, stdout %q", got, stdout)
	}
}

func TestNewLogger(t *testing.T) {
	level := new(slog.LevelVar)
	for _, tt := range []struct {
		format   string
		terminal bool
		json     bool
	}{
		{config.LogAuto, true, false}, {config.LogAuto, false, true},
		{config.LogText, false, false}, {config.LogJSON, true, true},
	} {
		var b bytes.Buffer
		newLogger(tt.format, &b, tt.terminal, level).Info("hello", "k", "v")
		var m map[string]any
		isJSON := json.Unmarshal(b.Bytes(), &m) == nil && m["msg"] == "hello" && m["k"] == "v"
		if isJSON != tt.json || !tt.json && !strings.Contains(b.String(), "msg=hello k=v") {
			t.Errorf("format %s, terminal %v: wrote %q", tt.format, tt.terminal, b.String())
		}
	}
	// Durations read as in the text format and the configuration, nested
	// in groups too, not as nanoseconds.
	for _, format := range []string{config.LogJSON, config.LogText} {
		var d bytes.Buffer
		newLogger(format, &d, false, level).Info("stopping", "grace", 30*time.Second, slog.Group("g", "took", 1500*time.Microsecond))
		if !strings.Contains(d.String(), "30s") || !strings.Contains(d.String(), "1.5ms") || strings.Contains(d.String(), "30000000000") {
			t.Errorf("format %s: durations written as %q", format, d.String())
		}
	}
	var b bytes.Buffer
	level.Set(logLevel("warn"))
	newLogger(config.LogText, &b, false, level).Info("hidden")
	if b.Len() != 0 {
		t.Errorf("info logged at level warn: %q", b.String())
	}
}

func TestReloader(t *testing.T) {
	var log bytes.Buffer
	loads := []*config.Config{config.New(), config.New()}
	loads[1].Log.Level = "debug"
	n := 0
	r := &reloader{
		load: func() (*config.Config, error) {
			if n == len(loads) {
				return nil, config.ErrorList{{File: "g.yaml", Line: 2, Column: 3, Path: "workers", Msg: "bad"}}
			}
			n++
			return loads[n-1], nil
		},
		ch: make(chan *config.Config, 1), logger: newLogger(config.LogText, &log, false, nil), level: new(slog.LevelVar),
	}
	r.logger = newLogger(config.LogText, &log, false, r.level)
	r.reload()
	r.reload() // the server has not taken the first one: it is replaced
	if got := <-r.ch; got != loads[1] {
		t.Error("the pending configuration is not the newest")
	}
	if r.level.Level() != slog.LevelDebug {
		t.Errorf("level %v after reloading log.level debug", r.level.Level())
	}
	r.reload()
	select {
	case got := <-r.ch:
		t.Errorf("an invalid configuration was delivered: %v", got)
	default:
	}
	if !strings.Contains(log.String(), `msg="reload: invalid configuration" error="g.yaml:2:3: workers: bad"`) ||
		!strings.Contains(log.String(), "the running configuration stays") {
		t.Errorf("log:\n%s", log.String())
	}
	log.Reset()
	(&reloader{logger: r.logger}).reload()
	if !strings.Contains(log.String(), "SIGHUP ignored") {
		t.Errorf("log without a file: %q", log.String())
	}
}

func TestListenURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080/", ":80": "http://0.0.0.0:80/", "[::1]:8080": "http://[::1]:8080/", "bad": "bad",
	} {
		if got := listenURL(addr); got != want {
			t.Errorf("listenURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
