package engine

// Values of Config.Backend.
const (
	// BackendAuto runs io_uring where the kernel allows it (Linux 6.1 or later,
	// io_uring not disabled), epoll otherwise.
	BackendAuto = "auto"
	// BackendEpoll runs edge-triggered epoll loops (the default on Linux).
	BackendEpoll = "epoll"
	// BackendIOURing runs io_uring loops and fails where the kernel refuses them.
	BackendIOURing = "io_uring"
	// BackendPortable is the engine built on the net package (non-Linux systems and
	// -tags galenet); it is what Backend reports there.
	BackendPortable = "portable"
)

// BackendError is New's error for a backend that is unknown or that the kernel
// does not provide (Err says why).
type BackendError struct {
	Backend string
	Err     error
}

func (e *BackendError) Error() string {
	if e.Err == nil {
		return `engine: unknown backend "` + e.Backend + `" (want auto, epoll or io_uring)`
	}
	return "engine: backend " + e.Backend + " unavailable: " + e.Err.Error()
}

// Unwrap returns why the backend is unavailable.
func (e *BackendError) Unwrap() error { return e.Err }
