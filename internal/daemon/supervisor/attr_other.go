//go:build unix && !linux

package supervisor

import "syscall"

// workerAttr returns the process attributes of a worker: its own process
// group, so that a terminal's ^C reaches the parent only. Without Linux's
// Pdeathsig, workers outlive a parent that is killed.
func workerAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
