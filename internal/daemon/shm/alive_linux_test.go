package shm

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestProcessAliveZombie: a gale killed with SIGKILL whose parent has not
// reaped it (a shell or a container init that does not wait) is a zombie,
// which kill(pid, 0) still finds; it is not alive, so gale status reports the
// instance gone instead of running. A running process and this one are alive.
func TestProcessAliveZombie(t *testing.T) {
	if !ProcessAlive(os.Getpid()) {
		t.Fatal("this process is not alive")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	if !ProcessAlive(pid) {
		t.Fatal("a running child is not alive")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	// Not waited for: the child stays a zombie until cmd.Wait.
	deadline := time.Now().Add(10 * time.Second)
	for ProcessAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatal("a killed, unreaped child is still reported alive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the child was reaped already (%v): the test did not see a zombie", err)
	}
}
