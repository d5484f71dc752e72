package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// watchSignals returns a context that is canceled by the first SIGINT or
// SIGTERM (its cause names the signal) and calls reload on every SIGHUP.
// A second SIGINT or SIGTERM calls force, which is expected to end the
// process without waiting for the graceful shutdown. Handlers run one at a
// time on a single goroutine, so reload is never called concurrently with
// itself. stop unregisters the signals, waits for that goroutine to finish
// and cancels the context; it must be called once.
func watchSignals(parent context.Context, reload, force func()) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
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
		signal.Stop(sigs)
		close(done)
		wg.Wait()
		cancel(context.Canceled)
	}
}
