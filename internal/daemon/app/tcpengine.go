package app

import (
	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/engine"
)

// engineFor returns the engine backend to run cfg on: the configured one,
// except that `auto` means epoll when the file has tcp entries, because TCP
// relays do not run on the io_uring engine yet (l4.ErrIOURing; `gale check`
// refuses `engine: io_uring` with tcp entries).
func engineFor(cfg *config.Config) string {
	if cfg.Engine == engine.BackendAuto && len(cfg.TCP) > 0 {
		return engine.BackendEpoll
	}
	return cfg.Engine
}
