package supervisor

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/os/sys"
)

// TestApplyScheduling walks the transitions serving.run makes: batch at start sets
// every thread, a reload to normal restores SCHED_NORMAL, and normal at start leaves
// a policy the process was started with.
func TestApplyScheduling(t *testing.T) {
	t.Cleanup(func() { sys.SetPolicy(sys.SchedNormal) })
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))

	applyScheduling(config.SchedBatch, "", log)
	wantPolicy(t, sys.SchedBatch)
	if !strings.Contains(buf.String(), "scheduling policy set") {
		t.Fatalf("no log line for batch: %s", buf.String())
	}

	applyScheduling(config.SchedBatch, config.SchedBatch, log) // reload, no change
	wantPolicy(t, sys.SchedBatch)

	applyScheduling(config.SchedNormal, config.SchedBatch, log) // reload to normal
	wantPolicy(t, sys.SchedNormal)

	// Started under chrt -b: normal at start keeps it.
	if _, err := sys.SetPolicy(sys.SchedBatch); err != nil {
		t.Fatal(err)
	}
	applyScheduling(config.SchedNormal, "", log)
	wantPolicy(t, sys.SchedBatch)
}

func wantPolicy(t *testing.T, want int) {
	t.Helper()
	tids, err := sys.ThreadIDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		if p, err := sys.Policy(tid); err == nil && p != want {
			t.Fatalf("thread %d has policy %d, want %d", tid, p, want)
		}
	}
}
