//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestUpgradeRunsTheBinaryAtTheStartPath: SIGUSR2 starts the binary found at
// the path gale was started from, not the file the old process runs, in the
// two deployments where they differ: a symlink in the path switched to a new
// release (current -> v1, then current -> v2), and the old binary moved aside
// (gale -> gale.old) before the new one is put at its path.
func TestUpgradeRunsTheBinaryAtTheStartPath(t *testing.T) {
	becomeSubreaper(t)
	t.Run("symlink switched", func(t *testing.T) {
		bin, next := galeBinary(t)
		dir := t.TempDir()
		for _, v := range []string{"v1", "v2"} {
			if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		rename(t, bin, filepath.Join(dir, "v1", "gale"))
		rename(t, next, filepath.Join(dir, "v2", "gale"))
		current := filepath.Join(dir, "current")
		if err := os.Symlink("v1", current); err != nil {
			t.Fatal(err)
		}
		upgradeAndCheck(t, dir, filepath.Join(current, "gale"), filepath.Join(dir, "v2", "gale"), func() {
			if err := os.Symlink("v2", current+".new"); err != nil {
				t.Fatal(err)
			}
			rename(t, current+".new", current)
		})
	})
	t.Run("old binary moved aside", func(t *testing.T) {
		bin, next := galeBinary(t)
		dir := filepath.Dir(bin)
		upgradeAndCheck(t, dir, bin, bin, func() {
			rename(t, bin, bin+".old")
			rename(t, next, bin)
		})
	})
}

// upgradeAndCheck starts the gale at start, deploys with deploy, sends
// SIGUSR2 and checks that the successor runs want.
func upgradeAndCheck(t *testing.T, dir, start, want string, deploy func()) {
	t.Helper()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, reloadConfig(1, "ok"))
	g := startGale(t, start, dir, "serve", "-c", cfgPath)
	deploy()
	g.signal(syscall.SIGUSR2)
	serves := g.waitLog("upgrade: the new process serves", 1)
	succ := int(serves[0]["pid"].(float64))
	t.Cleanup(func() { syscall.Kill(succ, syscall.SIGKILL) })
	if got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", succ)); err != nil || got != want {
		t.Errorf("the successor runs %q (%v), want %s", got, err, want)
	}
	if code := g.wait(15 * time.Second); code != 0 {
		t.Errorf("old process exit status %d", code)
	}
	stopAdopted(t, succ)
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
