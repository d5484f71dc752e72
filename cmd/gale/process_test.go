//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/daemon/supervisor"
	"golang.org/x/sys/unix"
)

// The tests in this file and in reload_test.go, upgrade_test.go and
// processes_test.go run the real gale binary, built once per test run.

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// TestMain removes the binaries built by galeBinary. It also turns the test
// binary into a connection-holding client process when GALE_TEST_CLIENT is
// set, and into a launcher that lowers the descriptor limit before executing
// gale when GALE_TEST_NOFILE is (see processes_test.go).
func TestMain(m *testing.M) {
	if spec := os.Getenv("GALE_TEST_CLIENT"); spec != "" {
		os.Exit(runHoldClient(spec))
	}
	if limit := os.Getenv("GALE_TEST_NOFILE"); limit != "" {
		os.Exit(execLimited(limit))
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// galeBinary returns the path of a gale binary built from this package (with
// the race detector when the tests have it) and of a second build that
// reports version "upgrade-test", for binary upgrades.
func galeBinary(t *testing.T) (bin, next string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the gale binary")
	}
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "gale-bin-"); buildErr != nil {
			return
		}
		for _, b := range []struct{ name, ldflags string }{
			{"gale", ""},
			{"gale-next", "-X main.version=upgrade-test"},
		} {
			args := []string{"build", "-o", filepath.Join(buildDir, b.name), "-ldflags", b.ldflags}
			if raceBuild {
				args = append(args, "-race")
			}
			if out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build: %v\n%s", err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	// Each test gets its own copy: an upgrade replaces the file.
	dir := t.TempDir()
	bin, next = filepath.Join(dir, "gale"), filepath.Join(dir, "gale-next")
	copyFile(t, filepath.Join(buildDir, "gale"), bin)
	copyFile(t, filepath.Join(buildDir, "gale-next"), next)
	return bin, next
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, raw, 0o755); err != nil {
		t.Fatal(err)
	}
}

// writeConfig replaces the file at path with text atomically, as an operator's
// editor or deployment tool should, so that a reload never reads half a file.
func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// galeProc is a running gale process. Its log (JSON lines on standard error)
// goes to a file, which processes it starts (workers, an upgrade's successor)
// write to as well.
type galeProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error         // set before exited is closed
}

// startGale runs bin with args in dir and waits until it logs that it
// listens.
func startGale(t *testing.T, bin, dir string, args ...string) *galeProc {
	t.Helper()
	logPath := filepath.Join(dir, fmt.Sprintf("gale-%d.log", time.Now().UnixNano()))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &galeProc{t: t, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		g.waitErr = cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-g.exited
		// A killed instance leaves its stats segment behind, with the
		// metrics and load tables beside it; so does a test that failed
		// before stopping it.
		for i, a := range args {
			if a == "-c" && i+1 < len(args) {
				cfg := args[i+1]
				if !filepath.IsAbs(cfg) {
					cfg = filepath.Join(dir, cfg)
				}
				files, _ := filepath.Glob(supervisor.StatsPathForFile(cfg) + "*")
				for _, f := range files {
					os.Remove(f)
				}
			}
		}
	})
	g.waitLog("listening", 1)
	return g
}

// records returns the log records whose msg is msg.
func (g *galeProc) records(msg string) []map[string]any {
	raw, _ := os.ReadFile(g.logPath)
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r map[string]any
		if json.Unmarshal(sc.Bytes(), &r) == nil && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// log returns the whole log, for failure messages.
func (g *galeProc) log() string {
	raw, _ := os.ReadFile(g.logPath)
	return string(raw)
}

// waitLog waits until at least n records with msg have been logged.
func (g *galeProc) waitLog(msg string, n int) []map[string]any {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs := g.records(msg)
		if len(recs) >= n {
			return recs
		}
		select {
		case <-g.exited:
			if recs = g.records(msg); len(recs) >= n {
				return recs
			}
			g.t.Fatalf("gale exited (%v) before logging %q %d times:\n%s", g.waitErr, msg, n, g.log())
		default:
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("timed out waiting for %q (%d of %d logged):\n%s", msg, len(recs), n, g.log())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// addr returns the address of the first listening record.
func (g *galeProc) addr() string {
	return g.records("listening")[0]["addr"].(string)
}

func (g *galeProc) signal(sig syscall.Signal) {
	g.t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		g.t.Fatal(err)
	}
}

// upgrade puts the binary next in place of bin (a rename, as an operator
// deploys), sends SIGUSR2 and waits until the successor serves; it returns the
// successor's pid, killed at the end of the test if still running.
func (g *galeProc) upgrade(bin, next string) int {
	g.t.Helper()
	if err := os.Rename(next, bin); err != nil {
		g.t.Fatal(err)
	}
	g.signal(syscall.SIGUSR2)
	serves := g.waitLog("upgrade: the new process serves", 1)
	succ := int(serves[0]["pid"].(float64))
	g.t.Cleanup(func() { syscall.Kill(succ, syscall.SIGKILL) })
	return succ
}

// wait waits for the process to exit and returns its exit status.
func (g *galeProc) wait(timeout time.Duration) int {
	g.t.Helper()
	select {
	case <-g.exited:
	case <-time.After(timeout):
		g.t.Fatalf("gale did not exit within %v:\n%s", timeout, g.log())
	}
	return g.cmd.ProcessState.ExitCode()
}

// becomeSubreaper makes this test process adopt the orphans of the processes
// it starts (an upgrade's successor outlives its parent), so that they can be
// waited for and none is left behind.
func becomeSubreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a child subreaper: %v", err)
	}
}

// stopAdopted sends SIGTERM to pid, a process this test adopted as
// subreaper, and reaps it; it fails the test if it does not exit cleanly.
func stopAdopted(t *testing.T, pid int) {
	t.Helper()
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatalf("stopping %d: %v", pid, err)
	}
	done := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		done <- ws
	}()
	select {
	case ws := <-done:
		if !ws.Exited() || ws.ExitStatus() != 0 {
			t.Errorf("process %d ended with %v", pid, ws)
		}
	case <-time.After(30 * time.Second):
		unix.Kill(pid, unix.SIGKILL)
		t.Fatalf("process %d did not stop", pid)
	}
}

// get sends one request on a new connection and returns the body.
func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %q %v", url, resp.StatusCode, b, err)
	}
	return string(b)
}

// rawConn is one keep-alive connection driven by hand.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, br: bufio.NewReader(c)}
}

// roundTrip sends GET path on the connection and returns the body and
// whether the response announced Connection: close.
func (rc *rawConn) roundTrip(t *testing.T, path string) (body string, closing bool) {
	t.Helper()
	rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(rc.c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatalf("response on the kept connection: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("kept connection: %d %q %v", resp.StatusCode, b, err)
	}
	return string(b), resp.Close
}

// goLoad sends GET requests on conns keep-alive connections until ctx is
// done and counts responses that are not a 200 with a body valid accepts.
type goLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string // the first few failures
	wg         sync.WaitGroup
}

func startGoLoad(ctx context.Context, url string, conns int, valid func(string) bool) *goLoad {
	l := &goLoad{}
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	for i := 0; i < conns; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				resp, err := client.Get(url)
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || !valid(string(b))) {
						err = fmt.Errorf("status %d body %q", resp.StatusCode, b)
					}
				}
				if err != nil {
					l.fail(err)
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *goLoad) fail(err error) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, err.Error())
	}
	l.mu.Unlock()
}

// wait waits for the load to end (after its context) and reports failures.
func (l *goLoad) check(t *testing.T, name string) {
	t.Helper()
	l.wg.Wait()
	t.Logf("%s: %d requests, %d failed", name, l.ok.Load(), l.failed.Load())
	if l.failed.Load() != 0 || l.ok.Load() == 0 {
		t.Errorf("%s: %d failed of %d; first failures: %v", name, l.failed.Load(), l.ok.Load()+l.failed.Load(), l.errs)
	}
}

// wrkRun is a wrk process generating load until stopped.
type wrkRun struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// startWrk runs wrk against url if it is installed (scripts/test.sh installs
// it); nil otherwise.
func startWrk(t *testing.T, url string, conns int) *wrkRun {
	t.Helper()
	path, err := exec.LookPath("wrk")
	if err != nil {
		t.Log("wrk is not installed; the Go load loop alone generates load")
		return nil
	}
	w := &wrkRun{cmd: exec.Command(path, "-t2", "-c"+strconv.Itoa(conns), "-d120s", url)}
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.cmd.Process.Kill(); w.cmd.Wait() })
	return w
}

var (
	wrkTotal    = regexp.MustCompile(`(\d+) requests in`)
	wrkSockErrs = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// stop ends wrk (SIGINT makes it print its summary) and fails the test on
// any socket error or non-2xx response.
func (w *wrkRun) stop(t *testing.T) {
	t.Helper()
	if w == nil {
		return
	}
	w.cmd.Process.Signal(os.Interrupt)
	if err := w.cmd.Wait(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("wrk: %v", err)
		}
	}
	out := w.out.String()
	m := wrkTotal.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary from wrk:\n%s", out)
	}
	total, _ := strconv.Atoi(m[1])
	t.Logf("wrk: %d requests%s", total, strings.TrimRight(" "+strings.Join(append(wrkSockErrs.FindStringSubmatch(out), wrkNon2xx.FindStringSubmatch(out)...), " "), " "))
	if total == 0 {
		t.Errorf("wrk made no requests:\n%s", out)
	}
	if s := wrkSockErrs.FindStringSubmatch(out); s != nil {
		t.Errorf("wrk socket errors (connect %s, read %s, write %s, timeout %s):\n%s", s[1], s[2], s[3], s[4], out)
	}
	if s := wrkNon2xx.FindStringSubmatch(out); s != nil {
		t.Errorf("wrk saw %s non-2xx responses:\n%s", s[1], out)
	}
}
