//go:build linux && !galenet

package engine

import (
	"errors"
	"testing"

	"github.com/gale-server/gale/internal/os/uring"
)

// TestBackendChoice: Config.Backend picks the kernel interface, an unknown name is
// refused with a *BackendError naming the choices, and auto takes io_uring exactly
// when the kernel probe passes.
func TestBackendChoice(t *testing.T) {
	probe := uring.Probe()
	for _, tc := range []struct {
		backend, want string
		fails         bool
	}{
		{BackendEpoll, BackendEpoll, false},
		{BackendAuto, map[bool]string{true: BackendIOURing, false: BackendEpoll}[probe == nil], false},
		{BackendIOURing, BackendIOURing, probe != nil},
		{"uring", "", true},
	} {
		e, err := New(Config{Workers: 1, Backend: tc.backend})
		if tc.fails {
			var be *BackendError
			if !errors.As(err, &be) || be.Backend != tc.backend {
				t.Errorf("backend %q: error %v, want a *BackendError", tc.backend, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("backend %q: %v", tc.backend, err)
			continue
		}
		if got := e.Backend(); got != tc.want {
			t.Errorf("backend %q runs %s, want %s", tc.backend, got, tc.want)
		}
		e.Start()
		if err := e.Shutdown(t.Context()); err != nil {
			t.Errorf("backend %q: shutdown: %v", tc.backend, err)
		}
	}
	if _, err := New(Config{Workers: 1, Backend: "uring"}); err == nil || err.Error() != `engine: unknown backend "uring" (want auto, epoll or io_uring)` {
		t.Errorf("unknown backend error: %v", err)
	}
}
