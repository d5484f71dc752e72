package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// watchSignals returns a context that is canceled by the first SIGINT,
// SIGTERM or SIGQUIT (its cause names the signal) and calls reload on every
// SIGHUP. SIGQUIT is nginx's graceful stop (and the stop signal of its
// container images), so it stops gracefully here too instead of ending the
// process with the Go runtime's goroutine dump. A second terminating signal
// calls force, which is expected to end the process without waiting for the
// graceful shutdown. Handlers run one at a time on a single goroutine, so
// reload is never called concurrently with itself. stop waits for that goroutine to finish and cancels the context;
// signals that arrive afterwards are dropped. It must be called once.
func watchSignals(parent context.Context, reload, force func()) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		terminating := false // owned by this goroutine
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				switch {
				case s == syscall.SIGHUP:
					reload()
				case !terminating:
					terminating = true
					cancel(fmt.Errorf("received %v", s))
				default:
					force()
				}
			}
		}
	}()
	return ctx, func() {
		// sigs stays registered (signal.Stop would restore the default
		// action): a termination signal that arrives while the process
		// exits, such as a worker's repeated parent-death SIGTERM, is
		// dropped instead of killing it in place of its own exit status.
		// Unlike signal.Ignore, this leaves the processes gale starts with
		// the default actions.
		close(done)
		wg.Wait()
		cancel(context.Canceled)
	}
}
