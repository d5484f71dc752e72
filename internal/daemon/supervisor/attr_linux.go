package supervisor

import "syscall"

// workerAttr returns the process attributes of a worker: its own process
// group, so that a terminal's ^C reaches the parent only (which forwards it
// once), and SIGTERM from the kernel if the parent dies, so that workers
// stop gracefully instead of serving unsupervised.
func workerAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
