//go:build !unix

package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/gale-server/gale/config"
)

// notifyUpgrade does nothing: there is no SIGUSR2 to upgrade with.
func notifyUpgrade(ch chan<- os.Signal) {}

// isReopen reports false: there is no SIGUSR1.
func isReopen(os.Signal) bool { return false }

// runParent fails: worker processes need Unix process control (descriptor
// passing, signals).
func runParent(ctx context.Context, cfg *config.Config, log *slog.Logger, e env, usr2 <-chan os.Signal) error {
	return errors.New("processes > 1 needs a Unix system; use processes: 1")
}

// upgrade fails: binary upgrades need descriptor passing.
func upgrade(ctx context.Context, log *slog.Logger, socks sockets, held []string, statsPath string) error {
	return errors.ErrUnsupported
}
