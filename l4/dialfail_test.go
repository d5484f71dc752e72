package l4

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// TestEveryUpstreamFailedLogsWhy: when no server of the group connects, the
// log line that comes with the client's reset names each server tried and why
// its connect failed (the system call and its error); it named only the client.
func TestEveryUpstreamFailedLogsWhy(t *testing.T) {
	a, b := closedPort(t), closedPort(t)
	logs := &testkit.SyncBuffer{}
	_, addr := startProxy(t, Options{Upstreams: group(a, b), ConnectTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	// The reset may come before the client's connect is seen to complete (on
	// io_uring both refusals can be in before the dialer reads SO_ERROR): a
	// dial that fails with ECONNRESET is that reset.
	if c, err := net.Dial("tcp", addr); err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err == nil {
			t.Fatal("the client was not reset")
		}
		c.Close()
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the log line", func() bool { return strings.Contains(logs.String(), "every upstream server failed") })
	line := logs.String()
	for _, want := range []string{"tried=2", "dial " + a + ": connect: connection refused", "dial " + b + ": connect: connection refused"} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %q", line, want)
		}
	}
}
