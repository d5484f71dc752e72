//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/daemon/shm"
	"github.com/gale-server/gale/internal/daemon/supervisor"
	"golang.org/x/sys/unix"
)

// processConfig serves "ok" with the given number of worker processes of one
// loop each; idle connections stay open for the length of a test.
func processConfig(processes int) string {
	return fmt.Sprintf(`workers: 1
processes: %d
log: { format: json }
timeouts: { idle: 5m, shutdown_grace: 5s }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: / }
        respond: { status: 200, body: "ok" }
`, processes)
}

// statsRows reads the stats segment of the instance running cfgPath.
func statsRows(t *testing.T, cfgPath string) []shm.Row {
	t.Helper()
	seg, err := shm.OpenReadOnly(supervisor.StatsPathForFile(cfgPath))
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	return seg.Rows()
}

// waitStats polls the stats segment until cond holds.
func waitStats(t *testing.T, cfgPath, what string, cond func([]shm.Row) bool) []shm.Row {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rows := statsRows(t, cfgPath)
		if cond(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; rows %+v", what, rows)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func running(rows []shm.Row) map[int]int {
	out := map[int]int{} // worker -> pid
	for _, r := range rows {
		if r.Live {
			out[r.Worker] = r.PID
		}
	}
	return out
}

// TestProcessesRestartAndStatus runs four worker processes, checks gale
// status, kills one worker and checks that it is replaced, that the counters
// it published survive, and that SIGTERM stops everything.
func TestProcessesRestartAndStatus(t *testing.T) {
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, processConfig(4))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	g.waitLog("listening", 5)
	url := "http://" + g.addr() + "/"
	for i := 0; i < 40; i++ {
		if body := get(t, url); body != "ok" {
			t.Fatalf("body %q", body)
		}
	}
	rows := waitStats(t, cfgPath, "40 requests in the totals", func(r []shm.Row) bool { return shm.Sum(r).Requests == 40 })
	pids := running(rows)
	if len(pids) != 4 {
		t.Fatalf("running workers %v, want 4", pids)
	}
	out, err := exec.Command(bin, "status", "-c", cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("gale status: %v\n%s", err, out)
	}
	if s := string(out); strings.Count(s, " running ") != 4 || !strings.Contains(s, "total") {
		t.Errorf("gale status output:\n%s", s)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[0] == "total" && f[3] != "40" {
			t.Errorf("status total line %q: want 40 requests", line)
		}
	}

	victim := pids[2]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g.waitLog("worker died; restarting", 1)
	rows = waitStats(t, cfgPath, "a replacement for worker 2", func(r []shm.Row) bool {
		p := running(r)
		return len(p) == 4 && p[2] != victim && p[2] != 0
	})
	if got := shm.Sum(rows).Requests; got != 40 {
		t.Errorf("requests after the restart = %d, want the 40 counted before", got)
	}
	for i := 0; i < 40; i++ {
		get(t, url)
	}
	waitStats(t, cfgPath, "80 requests", func(r []shm.Row) bool { return shm.Sum(r).Requests == 80 })

	g.signal(syscall.SIGTERM)
	if code := g.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, g.log())
	}
	for _, pid := range running(rows) {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("worker %d outlived its parent", pid)
		}
	}
	if out, err := exec.Command(bin, "status", "-c", cfgPath).CombinedOutput(); err == nil || !strings.Contains(string(out), "no running instance") {
		t.Errorf("gale status after the stop: %v\n%s", err, out)
	}
}

// TestHeavyProcessesHoldMoreConnections shows that worker processes multiply
// the per-process descriptor limit: under a limit of L descriptors per
// process, one process holds fewer than L connections, four hold more than
// L. With GALE_HEAVY=1, L is this machine's limit (20,000 here) and 1.2 L
// connections come from client processes bound to several 127.0.0.x
// addresses; otherwise L is 1,024 and the test says it ran reduced.
func TestHeavyProcessesHoldMoreConnections(t *testing.T) {
	bin, _ := galeBinary(t)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	limit := 1024
	if os.Getenv("GALE_HEAVY") == "1" {
		limit = int(lim.Max)
	} else {
		t.Logf("reduced version: %d descriptors per gale process; GALE_HEAVY=1 uses this machine's limit (%d)", limit, lim.Max)
	}
	conns := limit + limit/5
	clients := (conns + 7999) / 8000
	if int(lim.Max) < conns/clients+100 {
		t.Skipf("descriptor limit %d too low for %d connections per client process", lim.Max, conns/clients)
	}
	for _, processes := range []int{1, 4} {
		served, active, perWorker := holdConnections(t, bin, processes, limit, conns, clients)
		t.Logf("processes=%d, limit %d: %d of %d connections served, %d open at the server, per worker %v",
			processes, limit, served, conns, active, perWorker)
		for w, n := range perWorker {
			if n >= limit {
				t.Errorf("worker %d holds %d connections, more than its limit %d", w, n, limit)
			}
		}
		switch processes {
		case 1:
			if active >= limit || served >= limit {
				t.Errorf("one process holds %d connections (served %d) under a limit of %d", active, served, limit)
			}
		default:
			if active != conns || served != conns {
				t.Errorf("%d processes hold %d connections (served %d), want all %d (more than the limit %d)", processes, active, served, conns, limit)
			}
		}
	}
}

// holdConnections starts gale with the descriptor limit, opens conns
// connections from client processes, and returns how many got a response,
// how many the server reports open, and the open count per worker.
func holdConnections(t *testing.T, bin string, processes, limit, conns, clients int) (served, active int, perWorker map[int]int) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, processConfig(processes))
	// The test binary sets the limit (soft and hard, so that the Go runtime
	// cannot raise it) and executes gale.
	g := startGaleLimited(t, bin, dir, limit, "serve", "-c", cfgPath)
	if processes > 1 {
		g.waitLog("listening", 1+processes)
	}
	addr := g.addr()

	type client struct {
		cmd   *exec.Cmd
		stdin io.Closer
		out   *bufio.Reader
	}
	var cs []client
	for k := 0; k < clients; k++ {
		n := conns / clients
		if k == clients-1 {
			n = conns - k*(conns/clients)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("GALE_TEST_CLIENT=%s|127.0.0.%d|%d", addr, 10+k, n))
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, client{cmd, stdin, bufio.NewReader(stdout)})
	}
	for _, c := range cs {
		line, err := c.out.ReadString('\n')
		var n, of int
		if _, err2 := fmt.Sscanf(line, "served %d of %d", &n, &of); err != nil || err2 != nil {
			t.Fatalf("client: %q %v %v", line, err, err2)
		}
		served += n
	}
	// Every response was read, so the server holds what it served; its
	// counters reach the segment within the 250ms publication period. Poll
	// until they match or a deadline passes (a loaded machine may be slow).
	deadline := time.Now().Add(15 * time.Second)
	for {
		active = 0
		perWorker = map[int]int{}
		for _, r := range statsRows(t, cfgPath) {
			if r.Live {
				perWorker[r.Worker] = int(r.Active)
				active += int(r.Active)
			}
		}
		if active >= served || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range cs {
		c.stdin.Close()
		c.cmd.Wait()
	}
	g.signal(syscall.SIGTERM)
	g.wait(60 * time.Second)
	return served, active, perWorker
}

// startGaleLimited runs gale through this test binary, which lowers the
// descriptor limit and then executes it (see TestMain).
func startGaleLimited(t *testing.T, bin, dir string, limit int, args ...string) *galeProc {
	t.Helper()
	t.Setenv("GALE_TEST_NOFILE", strconv.Itoa(limit))
	return startGale(t, os.Args[0], dir, append([]string{bin}, args...)...)
}

// execLimited is the GALE_TEST_NOFILE mode of the test binary: set the
// descriptor limit and execute the command in os.Args[1:].
func execLimited(limit string) int {
	n, err := strconv.Atoi(limit)
	if err != nil || len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "GALE_TEST_NOFILE: bad use")
		return 2
	}
	os.Unsetenv("GALE_TEST_NOFILE")
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(n), Max: uint64(n)}); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		return 2
	}
	err = syscall.Exec(os.Args[1], os.Args[1:], os.Environ())
	fmt.Fprintln(os.Stderr, "exec:", err)
	return 2
}

// runHoldClient is the GALE_TEST_CLIENT mode of the test binary; spec is
// "addr|source ip|n". It opens n connections from the source address, sends
// one request on each, reads every response it gets within a common
// deadline, prints "served K of N", and holds the connections until its
// standard input closes.
func runHoldClient(spec string) int {
	parts := strings.Split(spec, "|")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad client spec", spec)
		return 2
	}
	n, _ := strconv.Atoi(parts[2])
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(parts[1])}, Timeout: 10 * time.Second}
	req := []byte("GET / HTTP/1.1\r\nHost: hold\r\n\r\n")
	held := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := d.Dial("tcp", parts[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			break
		}
		if _, err := c.Write(req); err != nil {
			c.Close()
			continue
		}
		held = append(held, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	served := 0
	buf := make([]byte, 512)
	for _, c := range held {
		c.SetReadDeadline(deadline)
		k, err := c.Read(buf)
		if err == nil && strings.HasPrefix(string(buf[:k]), "HTTP/1.1 200") {
			served++
		}
	}
	fmt.Printf("served %d of %d\n", served, n)
	io.Copy(io.Discard, os.Stdin)
	// Keep the connections reachable until here: an unreachable net.Conn is
	// closed by its finalizer when the garbage collector runs.
	runtime.KeepAlive(held)
	return 0
}

// workerPIDs returns the pids of the workers the parent logged as started.
func workerPIDs(g *galeProc, n int) []int {
	var pids []int
	for _, r := range g.waitLog("worker started", n) {
		pids = append(pids, int(r["pid"].(float64)))
	}
	return pids
}

// reap waits, as the subreaper that adopted it, for process pid to end.
func reap(t *testing.T, pid int, within time.Duration) unix.WaitStatus {
	t.Helper()
	done := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
				break
			}
		}
		done <- ws
	}()
	select {
	case ws := <-done:
		return ws
	case <-time.After(within):
		unix.Kill(pid, unix.SIGKILL)
		t.Fatalf("process %d still runs after %v", pid, within)
		panic("unreachable")
	}
}

// TestParentDeathStopsWorkersGracefully: a parent killed outright (SIGKILL,
// the OOM killer) leaves its workers to stop gracefully, finishing a download
// under way. The kernel's parent-death SIGTERM often arrives two or three
// times, once for each parent thread the worker is handed to as the parent
// dies; the test sends each worker one more SIGTERM itself so that the
// repetition always happens. A worker used to take the second one for an
// operator's second SIGTERM and exit at once, cutting the download.
func TestParentDeathStopsWorkersGracefully(t *testing.T) {
	becomeSubreaper(t)
	const size = 32 << 20
	g, _, want := startDownloadGale(t, 2, size)
	pids := workerPIDs(g, 2)
	body, h := startDownload(t, g.addr(), size)

	g.signal(syscall.SIGKILL)
	g.wait(10 * time.Second)
	// The parent is gone, but its workers still write to the log pipe: wait
	// for both to say they stop (waitLog gives up once the parent exited).
	deadline := time.Now().Add(30 * time.Second)
	for len(g.records("shutting down")) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the workers did not both log \"shutting down\" after their parent died:\n%s", g.log())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, pid := range pids {
		unix.Kill(pid, unix.SIGTERM)
	}
	finishDownload(t, body, h, size, want, g)
	for _, pid := range pids {
		if ws := reap(t, pid, 30*time.Second); !ws.Exited() || ws.ExitStatus() != 0 {
			t.Errorf("worker %d ended with %v, want exit status 0:\n%s", pid, ws, g.log())
		}
	}
}

// TestSecondSIGTERMKillsWorkers: a second SIGTERM to the parent ends the
// whole instance at once, the workers included, although their graceful
// stop (a one-minute grace, a download under way) had only begun. Like an
// ordinary stop, it removes the instance's stats segment and the tables
// beside it, with one process as with two: they used to stay in /dev/shm,
// and gale status took the stopped instance for a killed one.
func TestSecondSIGTERMKillsWorkers(t *testing.T) {
	becomeSubreaper(t)
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("processes=%d", n), func(t *testing.T) {
			const size = 32 << 20
			g, cfg, _ := startDownloadGale(t, n, size)
			var pids []int
			if n > 1 {
				pids = workerPIDs(g, n)
			}
			startDownload(t, g.addr(), size)
			stats := supervisor.StatsPathForFile(cfg)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				tables, _ := filepath.Glob(stats + ".m*")
				if len(tables) == n {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("metrics tables while serving: %v, want %d", tables, n)
				}
			}

			g.signal(syscall.SIGTERM)
			g.waitLog("shutting down", n)
			g.signal(syscall.SIGTERM)
			if code := g.wait(10 * time.Second); code != 1 {
				t.Errorf("exit status %d after a second SIGTERM, want 1", code)
			}
			for _, pid := range pids {
				reap(t, pid, 10*time.Second)
			}
			if files, _ := filepath.Glob(stats + "*"); len(files) > 0 {
				t.Errorf("left behind after the second SIGTERM: %v", files)
			}
		})
	}
}

// TestWorkerLogLinesNameTheWorker: with processes: 2, the lines a worker logs
// about a reload, those of the command around the server included ("reload:
// configuration is valid; applying it"), carry worker=N, as docs/operations.md
// says of every line of a worker; the parent's own line carries none.
func TestWorkerLogLinesNameTheWorker(t *testing.T) {
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, processConfig(2))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	g.waitLog("listening", 3)
	g.signal(syscall.SIGHUP)
	g.waitLog("configuration reloaded", 2)
	workers := map[float64]int{}
	parent := 0
	for _, r := range g.waitLog("reload: configuration is valid; applying it", 3) {
		if w, ok := r["worker"].(float64); ok {
			workers[w]++
		} else {
			parent++
		}
	}
	if parent != 1 || len(workers) != 2 || workers[0] != 1 || workers[1] != 1 {
		t.Fatalf("reload lines: %d without worker, by worker %v; want 1, and one each from workers 0 and 1:\n%s", parent, workers, g.log())
	}
}
