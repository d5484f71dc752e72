//go:build !linux

package supervisor

import (
	"log/slog"

	"github.com/gale-server/gale/config"
)

// applyScheduling logs that `scheduling: batch` has no effect: SCHED_BATCH is a
// Linux policy (see docs/config.md).
func applyScheduling(sched, prev string, log *slog.Logger) {
	if sched == config.SchedBatch && sched != prev {
		log.Warn("scheduling: batch is Linux-only; ignored")
	}
}
