//go:build unix

package supervisor

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyUpgrade delivers SIGUSR2 (binary upgrade, or drain in a worker) on ch.
func notifyUpgrade(ch chan<- os.Signal) { signal.Notify(ch, syscall.SIGUSR2) }
