//go:build unix

package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/testkit"
)

// kill sends sig to this process; the signals are registered by the code
// under test, so they are delivered to its channel instead of ending the test.
func kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}

// within waits for ch with a generous deadline, failing the test on timeout.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestWatchSignals(t *testing.T) {
	reloads := make(chan struct{}, 4)
	forced := make(chan struct{}, 1)
	ctx, stop := watchSignals(context.Background(),
		func() { reloads <- struct{}{} },
		func() { forced <- struct{}{} })
	defer stop()

	kill(t, syscall.SIGHUP)
	within(t, reloads, "reload after SIGHUP")
	if ctx.Err() != nil {
		t.Fatal("SIGHUP canceled the context")
	}
	kill(t, syscall.SIGTERM)
	within(t, ctx.Done(), "cancellation after SIGTERM")
	if cause := context.Cause(ctx); cause == nil || cause.Error() != "received terminated" {
		t.Errorf("cause %v", cause)
	}
	kill(t, syscall.SIGINT)
	within(t, forced, "force after a second signal")
}

// TestServeReloadsOnSIGHUP runs gale serve with a fake server, and checks
// that on SIGHUP an invalid file is logged with its position and not
// applied, while a valid one reaches the server through config.Reloads.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "gale.yaml", goodConfig)
	started := make(chan struct{})
	reloaded := make(chan *config.Config, 1)
	run := func(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
		close(started)
		select {
		case c := <-config.Reloads(ctx):
			reloaded <- c
		case <-ctx.Done():
		}
		<-ctx.Done()
		return nil
	}
	c, _, _ := testCLI(run)
	stderr := &testkit.SyncBuffer{}
	c.stderr = stderr
	status := make(chan int, 1)
	go func() { status <- c.main([]string{"serve", "-c", file}) }()
	within(t, started, "the server to start")

	writeFile(t, dir, "gale.yaml", "workers: none\n"+goodConfig)
	kill(t, syscall.SIGHUP)
	testkit.WaitFor(t, "the invalid reload to be logged", func() bool { return strings.Contains(stderr.String(), "reload failed") })
	want := file + `:1:10: workers: expected a positive integer or \"auto\", got \"none\"`
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, stderr)
	}
	select {
	case cfg := <-reloaded:
		t.Fatalf("an invalid configuration reached the server: %v", cfg)
	default:
	}

	writeFile(t, dir, "gale.yaml", "workers: 3\n"+goodConfig)
	kill(t, syscall.SIGHUP)
	if cfg := within(t, reloaded, "the valid configuration"); cfg.Workers != 3 {
		t.Errorf("reloaded workers %d, want 3", cfg.Workers)
	}
	kill(t, syscall.SIGTERM)
	if got := within(t, status, "gale serve to return"); got != 0 {
		t.Errorf("status %d", got)
	}
}
