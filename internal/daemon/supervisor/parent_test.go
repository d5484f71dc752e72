//go:build linux

package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/daemon/shm"
)

// TestMain turns the test binary into a fake worker process when
// GALE_FAKE_WORKER_DIR is set (see fakeWorker).
func TestMain(m *testing.M) {
	if dir := os.Getenv("GALE_FAKE_WORKER_DIR"); dir != "" {
		os.Exit(fakeWorker(dir))
	}
	os.Exit(m.Run())
}

// fakeWorker behaves like a gale worker as far as its parent can tell: it
// reads the environment contract, answers every connection on its sockets
// with its index, reports readiness, records SIGHUP and SIGUSR2 in
// dir/events-INDEX and exits on SIGTERM (0) or SIGUSR2 (0). If
// dir/crash-INDEX holds K, its first K starts exit with status 3 right after
// reporting readiness. While dir/slow-INDEX exists, it waits at start with no
// signal handler installed.
func fakeWorker(dir string) int {
	e, err := readEnv()
	if err != nil || e.worker < 0 {
		fmt.Fprintln(os.Stderr, "fake worker:", err)
		return 2
	}
	i := strconv.Itoa(e.worker)
	appendLine(filepath.Join(dir, "starts-"+i), strconv.Itoa(os.Getpid()))
	appendLine(filepath.Join(dir, "sockets-"+i), strconv.Itoa(countSockets()))
	if _, err := os.Stat(filepath.Join(dir, "slow-"+i)); err == nil {
		// Like a real worker reading its configuration: no signal handler
		// yet, until dir/slow-INDEX is removed.
		for {
			if _, err := os.Stat(filepath.Join(dir, "slow-"+i)); err != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGUSR2)
	for _, in := range e.listeners {
		for _, fd := range in.FDs {
			l, err := net.FileListener(os.NewFile(uintptr(fd), "listener"))
			if err != nil {
				fmt.Fprintln(os.Stderr, "fake worker:", err)
				return 2
			}
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					fmt.Fprintf(c, "worker %s\n", i)
					c.Close()
				}
			}()
		}
	}
	e.ready.Write([]byte{1})
	e.ready.Close()
	if raw, err := os.ReadFile(filepath.Join(dir, "crash-"+i)); err == nil {
		k, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		if lines(filepath.Join(dir, "starts-"+i)) <= k {
			return 3
		}
	}
	for s := range sigs {
		switch s {
		case syscall.SIGHUP:
			appendLine(filepath.Join(dir, "events-"+i), "hup")
		case syscall.SIGUSR2:
			appendLine(filepath.Join(dir, "events-"+i), "usr2")
			return 0
		default:
			return 0
		}
	}
	return 0
}

// countSockets counts this process's socket descriptors.
func countSockets() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, line)
	f.Close()
}

func lines(path string) int {
	raw, _ := os.ReadFile(path)
	return strings.Count(string(raw), "\n")
}

// logBuffer collects JSON log records; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the decoded records whose msg is msg.
func (b *logBuffer) records(msg string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var r map[string]any
		if json.Unmarshal(sc.Bytes(), &r) == nil && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeParent builds a parent of n fake workers serving one address.
func fakeParent(t *testing.T, n int) (p *parent, usr2 chan os.Signal, dir string, logs *logBuffer, reloads chan *config.Config, ctx context.Context, cancel context.CancelFunc) {
	t.Helper()
	dir = t.TempDir()
	t.Setenv("GALE_FAKE_WORKER_DIR", dir)
	cfg := testConfig(t, "127.0.0.1:0")
	cfg.Processes, cfg.Workers = n, 1
	cfg.Timeouts.ShutdownGrace = time.Second
	socks, err := openSockets(cfg, nil, n)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := shm.Create(filepath.Join(dir, "stats"), 8)
	if err != nil {
		t.Fatal(err)
	}
	logs = &logBuffer{}
	reloads = make(chan *config.Config, 1)
	ctx, cancel = context.WithCancel(config.WithReloads(context.Background(), reloads))
	t.Cleanup(cancel)
	usr2 = make(chan os.Signal, 1)
	p = &parent{
		cfg: cfg, log: slog.New(slog.NewJSONHandler(logs, nil)),
		exe: os.Args[0], args: []string{os.Args[0], "-test.run=^$"},
		socks: socks, seg: seg, usr2: usr2,
	}
	return p, usr2, dir, logs, reloads, ctx, cancel
}

func dial(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitRun waits for the parent's run to return on done and fails the test if
// it returns an error or does not return within 10 s; what names the event.
func waitRun(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("parent did not %s", what)
	}
}

func TestParentRestartsForwardsAndStops(t *testing.T) {
	p, usr2, dir, logs, reloads, ctx, cancel := fakeParent(t, 3)
	addr := p.socks["127.0.0.1:0"].Addr
	os.WriteFile(filepath.Join(dir, "crash-1"), []byte("2"), 0o644)
	upgrades := make(chan error, 1)
	p.upgrade = func(context.Context) error { return <-upgrades }
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, 3) }()

	// Worker 1 dies twice right after starting: it is restarted after 100ms,
	// then 200ms, and its third process stays.
	waitUntil(t, "worker 1 to start three times", func() bool { return lines(filepath.Join(dir, "starts-1")) >= 3 })
	died := logs.records("worker died; restarting")
	if len(died) != 2 {
		t.Fatalf("%d restarts logged, want 2:\n%s", len(died), logs)
	}
	for i, want := range []string{"100ms", "200ms"} {
		if died[i]["worker"] != 1.0 || died[i]["delay"] != float64(mustDuration(t, want)) || died[i]["status"] != "exit status 3" {
			t.Errorf("restart %d logged as %v, want worker 1, status 3, delay %s", i, died[i], want)
		}
	}
	// Every worker serves its share of the sockets; the parent accepts nothing.
	seen := map[string]bool{}
	for i := 0; i < 60 && len(seen) < 3; i++ {
		seen[dial(t, addr)] = true
	}
	if len(seen) < 2 {
		t.Errorf("connections reached only %v", seen)
	}
	// Each worker holds exactly its share: one of the three sockets.
	for i := 0; i < 3; i++ {
		raw, _ := os.ReadFile(filepath.Join(dir, "sockets-"+strconv.Itoa(i)))
		for _, n := range strings.Fields(string(raw)) {
			if n != "1" {
				t.Errorf("worker %d started with %s sockets, want 1", i, n)
			}
		}
	}
	rows := p.seg.Rows()
	if len(rows) != 3 {
		t.Fatalf("stats rows = %+v, want one reserved slot per worker", rows)
	}

	// SIGHUP is forwarded once to every worker.
	reloads <- p.cfg
	for i := 0; i < 3; i++ {
		f := filepath.Join(dir, "events-"+strconv.Itoa(i))
		waitUntil(t, "SIGHUP at worker "+strconv.Itoa(i), func() bool { return lines(f) == 1 })
	}

	// A failed upgrade leaves the workers serving.
	upgrades <- errors.New("no successor")
	usr2 <- syscall.SIGUSR2
	waitUntil(t, "the failed upgrade", func() bool { return len(logs.records("upgrade failed; the workers keep serving")) == 1 })
	dial(t, addr)

	// Stop: SIGTERM to every worker, run returns once they are gone, and the
	// stats segment is removed.
	pids := logs.records("worker started")
	cancel()
	waitRun(t, done, "stop")
	for _, r := range pids {
		pid := int(r["pid"].(float64))
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("worker process %d still exists after the parent returned", pid)
		}
	}
	if len(logs.records("worker died; restarting")) != 2 {
		t.Errorf("a worker was restarted during the stop:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "stats")); !os.IsNotExist(err) {
		t.Errorf("stats segment not removed: %v", err)
	}
	for i := 0; i < 3; i++ {
		if got := lines(filepath.Join(dir, "events-"+strconv.Itoa(i))); got != 1 {
			t.Errorf("worker %d recorded %d events, want only the SIGHUP", i, got)
		}
	}
}

// TestParentReloadSparesStartingWorker: a reload while a worker process is
// starting (no SIGHUP handler yet, so SIGHUP's default action would kill it)
// reaches that worker once it serves, and does not kill it; the other worker
// gets it at once.
func TestParentReloadSparesStartingWorker(t *testing.T) {
	p, _, dir, logs, reloads, ctx, cancel := fakeParent(t, 2)
	slow := filepath.Join(dir, "slow-1")
	os.WriteFile(slow, nil, 0o644)
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, 2) }()
	waitUntil(t, "worker 1 to start", func() bool { return lines(filepath.Join(dir, "starts-1")) == 1 })

	reloads <- p.cfg
	waitUntil(t, "SIGHUP at worker 0", func() bool { return lines(filepath.Join(dir, "events-0")) == 1 })
	os.Remove(slow)
	waitUntil(t, "SIGHUP at worker 1 once it serves", func() bool { return lines(filepath.Join(dir, "events-1")) == 1 })
	if died := logs.records("worker died; restarting"); len(died) != 0 {
		t.Errorf("a worker died: %v", died)
	}
	if n := lines(filepath.Join(dir, "starts-1")); n != 1 {
		t.Errorf("worker 1 started %d times, want once", n)
	}
	cancel()
	waitRun(t, done, "stop")
}

func TestParentRetiresAfterUpgrade(t *testing.T) {
	p, usr2, dir, logs, _, ctx, _ := fakeParent(t, 2)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p.ready = w // this parent is itself a successor: it reports when all serve
	p.upgrade = func(context.Context) error { return nil }
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, 2) }()
	r.SetReadDeadline(time.Now().Add(15 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		t.Fatalf("no readiness from the parent: %v\n%s", err, logs)
	}
	usr2 <- syscall.SIGUSR2
	waitRun(t, done, "retire")
	for i := 0; i < 2; i++ {
		raw, _ := os.ReadFile(filepath.Join(dir, "events-"+strconv.Itoa(i)))
		if string(raw) != "usr2\n" {
			t.Errorf("worker %d events %q, want a drain (usr2)", i, raw)
		}
	}
	if len(logs.records("worker died; restarting")) != 0 {
		t.Errorf("a draining worker was restarted:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "stats")); err != nil {
		t.Errorf("stats segment removed although the successor uses it: %v", err)
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
