package sys

import (
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSetPolicy sets SCHED_BATCH on the test process, checks every thread, and a
// thread the runtime creates afterwards, and then restores SCHED_NORMAL.
func TestSetPolicy(t *testing.T) {
	t.Cleanup(func() {
		if _, err := SetPolicy(SchedNormal); err != nil {
			t.Errorf("restoring SCHED_NORMAL: %v", err)
		}
	})
	n, err := SetPolicy(SchedBatch)
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("set %d threads; a Go process has several", n)
	}
	checkAll(t, SchedBatch)

	// A goroutine locked to its thread while others are locked too forces the
	// runtime to start new threads; they must inherit the policy.
	const extra = 4
	got := make(chan int, extra)
	release := make(chan struct{})
	for i := 0; i < extra; i++ {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			p, err := Policy(0)
			if err != nil {
				p = -1
			}
			got <- p
			<-release
		}()
	}
	for i := 0; i < extra; i++ {
		if p := <-got; p != SchedBatch {
			t.Errorf("a thread started after SetPolicy has policy %d, want SCHED_BATCH (%d)", p, SchedBatch)
		}
	}
	close(release)
	checkAll(t, SchedBatch)

	if _, err := SetPolicy(SchedNormal); err != nil {
		t.Fatal(err)
	}
	checkAll(t, SchedNormal)
}

func checkAll(t *testing.T, want int) {
	t.Helper()
	tids, err := ThreadIDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		p, err := Policy(tid)
		if err != nil {
			continue // exited since the listing
		}
		if p != want {
			t.Errorf("thread %d has policy %d, want %d", tid, p, want)
		}
	}
}

// TestSetPolicyRefusesBadPolicy checks that an unknown policy is an error naming the call.
func TestSetPolicyRefusesBadPolicy(t *testing.T) {
	_, err := SetPolicy(42)
	if err == nil {
		t.Fatal("policy 42 accepted")
	}
	if !strings.HasPrefix(err.Error(), "sched_setscheduler") {
		t.Fatalf("error %q does not name sched_setscheduler", err)
	}
}

// TestSetPolicyFindsLateThread hides a thread from the first two listings of
// /proc/self/task, as a thread still being cloned is hidden (its policy was copied
// from its creator before the creator was set). SetPolicy must list again after
// policySettle and set it. Under thread churn this happened about once in a
// thousand calls before SetPolicy waited.
func TestSetPolicyFindsLateThread(t *testing.T) {
	t.Cleanup(func() {
		listThreads = threadIDs
		if _, err := SetPolicy(SchedNormal); err != nil {
			t.Errorf("restoring SCHED_NORMAL: %v", err)
		}
	})
	late := make(chan int)
	release := make(chan struct{})
	defer close(release)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		late <- unix.Gettid()
		<-release
	}()
	hidden := <-late
	listings := 0
	listThreads = func() ([]int, error) {
		tids, err := threadIDs()
		if listings++; listings > 2 {
			return tids, err
		}
		shown := tids[:0]
		for _, tid := range tids {
			if tid != hidden {
				shown = append(shown, tid)
			}
		}
		return shown, err
	}
	if _, err := SetPolicy(SchedBatch); err != nil {
		t.Fatal(err)
	}
	if p, err := Policy(hidden); err != nil || p != SchedBatch {
		t.Fatalf("the thread listed late has policy %d (%v), want SCHED_BATCH (%d)", p, err, SchedBatch)
	}
	checkAll(t, SchedBatch)
}
