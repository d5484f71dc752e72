package sys

import (
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Scheduling policies of Linux (sched(7)) that SetPolicy accepts.
const (
	SchedNormal = unix.SCHED_NORMAL // SCHED_OTHER: the default, with wake-up preemption
	SchedBatch  = unix.SCHED_BATCH  // no wake-up preemption; same share of CPU time
)

// maxPolicyPasses bounds how often SetPolicy lists the process's threads. A thread
// created while a pass runs is cloned either from a thread already set (and inherits
// the policy) or from one set later in the pass; the next pass finds the latter.
const maxPolicyPasses = 8

// policySettle is how long after it last set a thread SetPolicy lists the threads
// once more before it returns. clone(2) copies the policy when it starts and the
// new thread is listed only when it finishes, so a thread whose creator was set in
// between is missing from a listing made right after, with the old policy (under
// thread churn one SetPolicy in about a thousand missed one). A clone that takes
// longer than this can still be missed: the wait narrows the race, it cannot close it.
const policySettle = 2 * time.Millisecond

// listThreads is threadIDs; tests replace it to delay a thread's appearance.
var listThreads = threadIDs

// SetPolicy gives every thread of the calling process the scheduling policy policy
// (SchedNormal or SchedBatch) at static priority 0, keeping each thread's nice value.
// Threads created afterwards inherit it from the thread that clones them, so the
// whole Go runtime, which moves goroutines between its threads, runs under it. It
// reports how many threads it set, and returns only once a listing made
// policySettle after the last thread was set finds no new one (or after
// maxPolicyPasses listings). A thread that exits meanwhile is skipped; any
// other failure is returned, naming the call, after the threads set before it.
func SetPolicy(policy int) (int, error) {
	done := map[int]bool{}
	lastSet := time.Now()
	for pass := 0; pass < maxPolicyPasses; pass++ {
		tids, err := listThreads()
		if err != nil {
			return len(done), err
		}
		fresh := 0
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			fresh++
			if err := setScheduler(tid, policy); err != nil {
				if err == unix.ESRCH {
					continue
				}
				return len(done), os.NewSyscallError("sched_setscheduler", err)
			}
			done[tid] = true
		}
		if fresh > 0 {
			lastSet = time.Now()
			continue
		}
		wait := policySettle - time.Since(lastSet)
		if wait <= 0 {
			break
		}
		time.Sleep(wait)
	}
	return len(done), nil
}

// Policy returns the scheduling policy of thread tid (0: the calling thread).
func Policy(tid int) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if e != 0 {
		return 0, os.NewSyscallError("sched_getscheduler", e)
	}
	return int(r), nil
}

// ThreadIDs lists the threads of the calling process.
func ThreadIDs() ([]int, error) { return threadIDs() }

func threadIDs() ([]int, error) {
	f, err := os.Open("/proc/self/task")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(names))
	for _, n := range names {
		if tid, err := strconv.Atoi(n); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// setScheduler is sched_setscheduler(2) with priority 0, which SCHED_OTHER and
// SCHED_BATCH require; it keeps the thread's nice value.
func setScheduler(tid, policy int) error {
	var param struct{ priority int32 }
	_, _, e := unix.RawSyscall(unix.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param)))
	if e != 0 {
		return e
	}
	return nil
}
