//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/daemon/shm"
)

func TestStatusCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stats")
	seg, err := shm.Create(path, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	seg.SetHolder(os.Getpid())
	live, _ := seg.Reserve(os.Getpid(), 0)
	seg.Slot(live).Store(shm.Counters{Accepted: 3, Active: 2, Requests: 10, BytesIn: 100, BytesOut: 200, Errors: 1}, time.Now())
	old, _ := seg.Reserve(os.Getpid(), 1)
	seg.Slot(old).Store(shm.Counters{Accepted: 4, Active: 9, Requests: 5}, time.Now())
	seg.Slot(old).Release() // an exited worker: history only

	c, stdout, stderr := testCLI(noRun(t))
	if code := c.main([]string{"status", "--stats", path}); code != exitOK {
		t.Fatalf("status = %d, stderr %q", code, stderr)
	}
	out := stdout.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := [][]string{
		{"0", "running", "3", "2", "10", "100", "200", "1"},
		{"-", "-", "history", "4", "0", "5", "0", "0", "0"},
		{"total", "7", "2", "15", "100", "200", "1"},
	}
	if len(lines) != 7 {
		t.Fatalf("status output:\n%s", out)
	}
	for i, w := range want {
		f := strings.Fields(lines[4+i])
		if i == 0 { // worker, pid, state, counters...
			f = append(f[:1], f[2:]...)
		}
		if len(f) < len(w) || strings.Join(f[:len(w)], " ") != strings.Join(w, " ") {
			t.Errorf("row %d = %q, want fields %v", i, lines[4+i], w)
		}
	}
	if !strings.Contains(lines[1], "supervisor pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("header %q", lines[1])
	}

	c, _, stderr = testCLI(noRun(t))
	if code := c.main([]string{"status", "--stats", path + ".missing"}); code != exitError || !strings.Contains(stderr.String(), "no running instance") {
		t.Errorf("missing segment: %d %q", code, stderr)
	}
	c, _, stderr = testCLI(noRun(t))
	if code := c.main([]string{"status", "-c", filepath.Join(t.TempDir(), "none.yaml")}); code != exitError || !strings.Contains(stderr.String(), "no running instance") {
		t.Errorf("no instance for a config file: %d %q", code, stderr)
	}
	c, stdout, _ = testCLI(noRun(t))
	if code := c.main([]string{"status", "--help"}); code != exitOK || !strings.Contains(stdout.String(), "usage: gale status") {
		t.Errorf("status --help: %d %q", code, stdout)
	}
	c, _, _ = testCLI(noRun(t))
	if code := c.main([]string{"status", "extra"}); code != exitUsage {
		t.Errorf("status with an argument: %d", code)
	}
	// -c and --stats are two ways to name the instance: both at once is a
	// usage error, not a silent choice of one.
	c, _, stderr = testCLI(noRun(t))
	if code := c.main([]string{"status", "-c", "gale.yaml", "--stats", "/nonexistent.stats"}); code != exitUsage || !strings.Contains(stderr.String(), "give one of them") {
		t.Errorf("status with -c and --stats: %d %q", code, stderr)
	}
}

// TestStatusOfKilledInstance: the segment of an instance whose supervisor was
// killed (it could not remove the segment) is printed, but gale status says
// that nothing runs and exits 1, as it does when no segment is found.
func TestStatusOfKilledInstance(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	cmd.Process.Kill()
	cmd.Wait() // a pid that no longer exists
	path := filepath.Join(t.TempDir(), "stats")
	seg, err := shm.Create(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	seg.SetHolder(cmd.Process.Pid)
	slot, _ := seg.Reserve(cmd.Process.Pid, 0)
	seg.Slot(slot).Store(shm.Counters{Accepted: 3, Requests: 3}, time.Now())

	c, stdout, stderr := testCLI(noRun(t))
	if code := c.main([]string{"status", "--stats", path}); code != exitError {
		t.Errorf("status of a killed instance = %d, want %d", code, exitError)
	}
	if !strings.Contains(stdout.String(), "gone") {
		t.Errorf("rows not printed:\n%s", stdout)
	}
	if want := "supervisor pid " + strconv.Itoa(cmd.Process.Pid) + " is not running"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr, want)
	}
}
