//go:build !linux

package supervisor

import (
	"errors"
	"os"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/internal/daemon/app"
)

// sockets are the listening sockets a top-level process owns; outside Linux
// gale binds its sockets in the server itself and none are handed over.
type sockets map[string]app.Inherited

// openSockets returns no sockets: the server binds its own.
func openSockets(cfg *config.Config, inherited map[string]app.Inherited, per int) (sockets, error) {
	return sockets{}, nil
}

// openSocketsHeld returns no sockets either.
func openSocketsHeld(cfg *config.Config, inherited map[string]app.Inherited, held map[string]bool, per int) (sockets, error) {
	return sockets{}, nil
}

func (s sockets) share(i, n int) map[string]app.Inherited { return nil }

func files(part map[string]app.Inherited) ([]*os.File, error) {
	if len(part) > 0 {
		return nil, errors.ErrUnsupported
	}
	return nil, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

func (s sockets) close() {}

func closeOnExec(fd int) {}
