//go:build linux

package main

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsUpgradeConfig serves a WebSocket echo whose subprotocol names the configuration
// (old or new), so that a client can tell which process accepted it.
func wsUpgradeConfig(processes int, which string, grace time.Duration) string {
	return fmt.Sprintf(`workers: 1
processes: %d
log: { format: json }
timeouts: { shutdown_grace: 5s, upgrade_grace: %s }
servers:
  - listen: ["127.0.0.1:0"]
    routes:
      - match: { path: /ws }
        websocket: { echo: true, subprotocols: [%s] }
`, processes, grace, which)
}

// TestUpgradeKeepsWebSockets sends SIGUSR2 with WebSockets open: they stay on the old
// process and keep echoing during upgrade_grace while new ones reach the new process,
// and when the grace is over the old process closes each with 1001 (going away) and
// exits cleanly.
func TestUpgradeKeepsWebSockets(t *testing.T) {
	becomeSubreaper(t)
	for _, processes := range []int{1, 2} {
		t.Run(fmt.Sprintf("processes=%d", processes), func(t *testing.T) { testUpgradeKeepsWebSockets(t, processes) })
	}
}

func testUpgradeKeepsWebSockets(t *testing.T, processes int) {
	const grace = 3 * time.Second
	bin, next := galeBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gale.yaml")
	writeConfig(t, cfgPath, wsUpgradeConfig(processes, "old", grace))
	g := startGale(t, bin, dir, "serve", "-c", cfgPath)
	if processes > 1 {
		g.waitLog("listening", 1+processes)
	}
	url := "ws://" + g.addr() + "/ws"
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"old", "new"}}
	dial := func() *websocket.Conn {
		t.Helper()
		c, _, err := dialer.Dial(url, http.Header{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	echo := func(c *websocket.Conn, msg string) error {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			return err
		}
		op, got, err := c.ReadMessage()
		if err == nil && (op != websocket.TextMessage || string(got) != msg) {
			err = fmt.Errorf("echo of %q: %d %q", msg, op, got)
		}
		return err
	}

	const n = 20
	old := make([]*websocket.Conn, n)
	for i := range old {
		old[i] = dial()
		if p := old[i].Subprotocol(); p != "old" {
			t.Fatalf("WebSocket %d before the upgrade: subprotocol %q", i, p)
		}
	}

	writeConfig(t, cfgPath, wsUpgradeConfig(processes, "new", grace))
	succ := g.upgrade(bin, next)
	g.waitLog("draining: stopped accepting", processes)
	drainStart := time.Now()

	// New WebSockets reach the new process.
	if p := dial().Subprotocol(); p != "new" {
		t.Errorf("WebSocket opened after the upgrade: subprotocol %q, want new", p)
	}
	// The old ones keep working on the old process during the grace period.
	for i, c := range old {
		if err := echo(c, fmt.Sprintf("during grace %d", i)); err != nil {
			t.Fatalf("WebSocket %d during upgrade_grace: %v", i, err)
		}
	}
	// Then each is closed with 1001 once the grace is over.
	for i, c := range old {
		c.SetReadDeadline(time.Now().Add(grace + 10*time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("WebSocket %d after upgrade_grace: %v, want close 1001", i, err)
		}
		if i == 0 {
			if early := time.Since(drainStart); early < grace-500*time.Millisecond {
				t.Errorf("first close 1001 %v after draining began, before upgrade_grace (%v)", early, grace)
			}
		}
	}
	if code := g.wait(15 * time.Second); code != 0 {
		t.Errorf("old process exit status %d:\n%s", code, g.log())
	}
	if got := g.records("upgrade grace over; closing the remaining connections"); len(got) != processes {
		t.Errorf("%d processes logged the end of upgrade_grace, want %d", len(got), processes)
	}
	stopAdopted(t, succ)
}
