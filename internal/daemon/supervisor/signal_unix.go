//go:build unix

package supervisor

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyUpgrade delivers SIGUSR2 (binary upgrade, or drain in a worker) and
// SIGUSR1 (reopen the access logs; see isReopen) on ch.
func notifyUpgrade(ch chan<- os.Signal) { signal.Notify(ch, syscall.SIGUSR2, syscall.SIGUSR1) }

// isReopen reports whether sig asks to reopen the log files (SIGUSR1).
func isReopen(sig os.Signal) bool { return sig == syscall.SIGUSR1 }
