package servertest

import (
	"testing"

	"github.com/gale-server/gale/engine"
)

// OnEngines runs f as a subtest per Linux engine ("epoll", "io_uring", the names
// of the configuration's engine key), skipping io_uring where the kernel does not
// offer it.
func OnEngines(t *testing.T, f func(t *testing.T, eng string)) {
	for _, eng := range []string{engine.BackendEpoll, engine.BackendIOURing} {
		t.Run(eng, func(t *testing.T) {
			if eng == engine.BackendIOURing {
				if _, err := engine.New(engine.Config{Workers: 1, Backend: eng}); err != nil {
					t.Skipf("no io_uring engine here: %v", err)
				}
			}
			f(t, eng)
		})
	}
}
