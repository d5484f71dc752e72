package app

import (
	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/engine"
)

// engineFor returns the engine backend to run cfg on: the configured one,
// except that `auto` means epoll when the file has tcp entries. TCP relays run
// on io_uring, splice included, but at about 1.2-1.3 times epoll's CPU per byte
// (docs/l4.md); an operator who wants that asks for `engine: io_uring` by name.
func engineFor(cfg *config.Config) string {
	if cfg.Engine == engine.BackendAuto && len(cfg.TCP) > 0 {
		return engine.BackendEpoll
	}
	return cfg.Engine
}
