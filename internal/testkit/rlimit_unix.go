//go:build unix

package testkit

import (
	"syscall"
	"testing"
)

// RaiseFileLimit raises the process's open-file limit to at least need for the rest of
// the test (restored at cleanup) and returns the limit in force: need, or the old one
// when the system refuses to raise it (the caller then scales its test down).
func RaiseFileLimit(t testing.TB, need uint64) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= need {
		return lim.Cur
	}
	old := lim
	lim.Cur = need
	lim.Max = max(lim.Max, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return old.Cur
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	return need
}
