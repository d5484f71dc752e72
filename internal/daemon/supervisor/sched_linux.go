package supervisor

import (
	"log/slog"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/os/sys"
)

// applyScheduling gives the process's threads the policy of `scheduling` (see
// docs/config.md) when it differs from prev, the value in force before ("" at
// start). At start `normal` changes nothing, so a policy gale was started with
// (chrt, systemd's CPUSchedulingPolicy) stays; a reload from batch to normal sets
// SCHED_NORMAL. A failure is logged and the process serves on.
func applyScheduling(sched, prev string, log *slog.Logger) {
	if sched == prev || (prev == "" && sched != config.SchedBatch) {
		return
	}
	policy := sys.SchedNormal
	if sched == config.SchedBatch {
		policy = sys.SchedBatch
	}
	n, err := sys.SetPolicy(policy)
	if err != nil {
		log.Warn("setting the scheduling policy failed; threads keep theirs", "scheduling", sched, "threads_set", n, "err", err)
		return
	}
	log.Info("scheduling policy set", "scheduling", sched, "threads", n)
}
