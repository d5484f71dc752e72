//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestUpgradeUnderLoad replaces the gale binary on disk and sends SIGUSR2
// while wrk (when installed) and a Go client load the server. The new binary
// must take over the listening sockets, the old process must drain and exit,
// and no request may fail. The configuration file is changed before the
// upgrade, so the body tells which process answered: "old" or "new".
func TestUpgradeUnderLoad(t *testing.T) {
	becomeSubreaper(t)
	for _, processes := range []int{1, 2} {
		t.Run(fmt.Sprintf("processes=%d", processes), func(t *testing.T) { testUpgradeUnderLoad(t, processes) })
	}
}

func testUpgradeUnderLoad(t *testing.T, processes int) {
	bin, next := galeBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, reloadConfig(processes, "old"))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	if processes > 1 {
		g.waitLog("listening", 1+processes)
	}
	addr := g.addr()
	url := "http://" + addr + "/"

	// A keep-alive connection that is idle when the upgrade happens.
	idle := dialRaw(t, addr)
	if body, _ := idle.roundTrip(t, "/"); body != "old" {
		t.Fatalf("first body %q", body)
	}
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	load := startGoLoad(ctx, url, 4, func(b string) bool { return b == "old" || b == "new" })
	wrk := startWrk(t, url, 16)
	time.Sleep(300 * time.Millisecond)

	writeConfig(t, cfgPath, reloadConfig(processes, "new"))
	succ := g.upgrade(bin, next)
	g.waitLog("draining: stopped accepting", processes)

	// New connections reach the new binary at once.
	if got := get(t, url); got != "new" {
		t.Errorf("new connection after the upgrade answered %q", got)
	}
	// The idle connection's next request is still answered, by the old
	// process, and closes the connection afterwards so the client reconnects.
	body, closing := idle.roundTrip(t, "/")
	if body != "old" || !closing {
		t.Errorf("idle connection after the upgrade: body %q, Connection: close %v; want old, true", body, closing)
	}
	idle.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle.br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("idle connection not closed after its last response: %d, %v", n, err)
	}

	// The old process (or parent with its workers) finishes its connections
	// and exits well before upgrade_grace.
	if code := g.wait(15 * time.Second); code != 0 {
		t.Errorf("old process exit status %d", code)
	}
	if n := len(g.records("drained: every connection finished")); n != processes {
		t.Errorf("%d processes drained cleanly, want %d:\n%s", n, processes, g.log())
	}
	time.Sleep(300 * time.Millisecond) // load on the new process alone
	stopLoad()
	wrk.stop(t)
	load.check(t, "go client")

	// The successor runs the new file, not a copy of the old binary.
	exe, err1 := os.Stat("/proc/" + strconv.Itoa(succ) + "/exe")
	cur, err2 := os.Stat(bin)
	if err1 != nil || err2 != nil || !os.SameFile(exe, cur) {
		t.Errorf("successor %d does not run the replaced binary (%v, %v)", succ, err1, err2)
	}
	if got := get(t, url); got != "new" {
		t.Errorf("after the upgrade: body %q", got)
	}
	stopAdopted(t, succ)
}
