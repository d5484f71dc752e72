//go:build linux

package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/daemon/supervisor"
)

// startTwoWorkers runs processConfig(2) from a file in a new directory and
// returns once both workers serve.
func startTwoWorkers(t *testing.T) (*galeProc, string) {
	t.Helper()
	bin, _ := galeBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, processConfig(2))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	g.waitLog("listening", 3) // the parent's line, then each worker's
	return g, cfgPath
}

// TestRestartedWorkerRunsTheServedConfiguration: a worker process restarted
// after a crash runs the configuration its parent serves, as a worker nginx
// forks runs its master's, and not the file as it is by then. The file is
// edited (a new body) without a reload and a worker killed: its replacement
// answers with the old body, like the other worker. The file is then made
// invalid and the replacement killed: the next one starts and serves all the
// same. Before, a restarted worker read the file again, so the edit went live
// on one worker of two and the invalid file kept it from starting (exit
// status 1, retried with the backoff) until the file was fixed.
func TestRestartedWorkerRunsTheServedConfiguration(t *testing.T) {
	g, cfgPath := startTwoWorkers(t)
	url := "http://" + g.addr() + "/"

	// kill ends worker process pid and returns the pid of its replacement
	// once that serves.
	started, listening := 2, 3 // "worker started" and "listening" lines so far
	kill := func(pid int) int {
		t.Helper()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		started++
		listening++
		next := int(g.waitLog("worker started", started)[started-1]["pid"].(float64))
		g.waitLog("listening", listening)
		return next
	}
	// servesOld checks that every answer is the served body until worker
	// pid has answered a few requests itself.
	servesOld := func(pid int, what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if body := get(t, url); body != "ok" {
				t.Fatalf("%s: body %q, want %q (the configuration the parent serves)", what, body, "ok")
			}
			for _, r := range statsRows(t, cfgPath) {
				if r.PID == pid && r.Live && r.Requests >= 3 {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: worker %d took no requests within 20s; rows %+v\n%s", what, pid, statsRows(t, cfgPath), g.log())
			}
		}
	}
	pid := workerPIDs(g, 2)[0]

	writeConfig(t, cfgPath, strings.Replace(processConfig(2), `body: "ok"`, `body: "edited"`, 1))
	pid = kill(pid)
	servesOld(pid, "after an edit not reloaded")

	writeConfig(t, cfgPath, processConfig(2)+"  garbage: [\n")
	servesOld(kill(pid), "with an invalid file")

	g.signal(syscall.SIGTERM)
	if code := g.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, g.log())
	}
}

// TestWorkersApplyTheReloadTheParentValidated: on SIGHUP each worker applies
// the configuration its parent read and validated, even when the file has
// changed again before the worker gets to it. Worker 0 is stopped (SIGSTOP)
// while the parent reloads a new body, so that the SIGHUP forwarded to it
// waits; the file is edited once more, without a reload, and the worker
// continued: it serves the reloaded body, as worker 1 does. Before, each
// worker read the file itself, and worker 0 served the later edit.
func TestWorkersApplyTheReloadTheParentValidated(t *testing.T) {
	body := func(b string) string {
		return strings.Replace(processConfig(2), `body: "ok"`, `body: "`+b+`"`, 1)
	}
	g, cfgPath := startTwoWorkers(t)
	pids := workerPIDs(g, 2)
	url := "http://" + g.addr() + "/"

	if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, cfgPath, body("reloaded"))
	g.signal(syscall.SIGHUP)
	g.waitLog("configuration reloaded", 1) // worker 1's
	writeConfig(t, cfgPath, body("edited later"))
	if err := syscall.Kill(pids[0], syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	g.waitLog("configuration reloaded", 2)

	deadline := time.Now().Add(20 * time.Second)
	for served := map[int]bool{}; len(served) < 2; {
		if got := get(t, url); got != "reloaded" {
			t.Fatalf("body %q, want %q (the configuration the parent reloaded)", got, "reloaded")
		}
		for _, r := range statsRows(t, cfgPath) {
			if r.Live && r.Requests >= 3 {
				served[r.PID] = true
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers that took requests within 20s: %v", served)
		}
	}
	g.signal(syscall.SIGTERM)
	if code := g.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, g.log())
	}
	if files, _ := filepath.Glob(supervisor.StatsPathForFile(cfgPath) + "*"); len(files) > 0 {
		t.Errorf("left behind after the stop: %v", files)
	}
}
