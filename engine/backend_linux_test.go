//go:build linux && !galenet

package engine

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"unsafe"

	"github.com/gale-server/gale/internal/os/uring"
	"golang.org/x/sys/unix"
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

// TestBackendWithoutIOURing runs the backend choice again in a child process
// whose io_uring_setup(2) fails with EPERM, as it does where a seccomp profile
// (a container runtime's default) or kernel.io_uring_disabled refuses io_uring:
// auto falls back to epoll, and io_uring is refused with a *BackendError that
// says why.
func TestBackendWithoutIOURing(t *testing.T) {
	if os.Getenv("GALE_TEST_NO_URING") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBackendWithoutIOURing$", "-test.v")
		cmd.Env = append(os.Environ(), "GALE_TEST_NO_URING=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestBackendWithoutIOURing") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	denyIOURing(t)
	if err := uring.Probe(); !errors.Is(err, unix.EPERM) {
		t.Fatalf("probe under the filter: %v, want EPERM", err)
	}
	e, err := New(Config{Workers: 1, Backend: BackendAuto})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Backend(); got != BackendEpoll {
		t.Errorf("auto without io_uring runs %s, want epoll", got)
	}
	e.Start()
	if err := e.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}
	_, err = New(Config{Workers: 1, Backend: BackendIOURing})
	var be *BackendError
	if !errors.As(err, &be) || !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "backend io_uring unavailable") {
		t.Errorf("io_uring without io_uring: %v, want a *BackendError wrapping EPERM", err)
	}
}

// denyIOURing installs a seccomp filter on every thread of the process that makes
// io_uring_setup(2) fail with EPERM and allows everything else.
func denyIOURing(t *testing.T) {
	t.Helper()
	const (
		seccompSetModeFilter = 1
		seccompFlagTsync     = 1
		retErrno             = 0x00050000
		retAllow             = 0x7fff0000
	)
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jf: 1, K: unix.SYS_IO_URING_SETUP},
		{Code: unix.BPF_RET | unix.BPF_K, K: retErrno | uint32(unix.EPERM)},
		{Code: unix.BPF_RET | unix.BPF_K, K: retAllow},
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Fatal(os.NewSyscallError("prctl", err))
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, seccompSetModeFilter, seccompFlagTsync, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		t.Fatal(os.NewSyscallError("seccomp", e))
	}
}
