//go:build unix

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// readyTimeout bounds how long an old process waits for its successor, or a
// parent for a new worker, to say that it serves.
var readyTimeout = 60 * time.Second

// startPath is the path this process was started from, made absolute at
// start: its argv[0] as given (a name without a slash looked up in PATH, as
// the shell did), or, when that fails, the binary the kernel ran. An upgrade
// executes what is found at this path then, as nginx does with its argv[0]:
// a new binary renamed over the old one, or a symlink in the path switched to
// another release (/opt/gale/current -> v2), is what starts. The binary this
// process runs (/proc/self/exe) would be the old version in both of those
// deployments, since a rename or a symlink switch leaves it where it was.
var startPath = func() string {
	p := os.Args[0]
	if !strings.Contains(p, "/") {
		found, err := exec.LookPath(p)
		if err != nil { // not found, or found relative to "." in PATH (exec.ErrDot)
			found = ""
		}
		p = found
	}
	if p != "" {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	exe, _ := os.Executable()
	return exe
}()

// upgrade starts the binary at the path this process was started from again
// (the file may have been replaced by a new version, see startPath) with the
// same arguments, hands it socks and the stats segment at statsPath, and
// waits until it reports that it serves. On error the successor, if it
// started, is stopped and this process is expected to keep serving.
func upgrade(ctx context.Context, log *slog.Logger, socks sockets, held []string, statsPath string) (err error) {
	// From here the successor may take the stats segment over: an abort
	// (a second termination signal) must not remove it under the new
	// process. A failed upgrade gives it back.
	seg := heldStats.Swap(nil)
	defer func() {
		if err != nil && seg != nil {
			heldStats.CompareAndSwap(nil, seg)
		}
	}()
	exe := startPath
	if exe == "" {
		return errors.New("upgrade: cannot find the path gale was started from")
	}
	log.Info("upgrade: starting the new binary", "path", exe)
	extra, err := files(socks)
	if err != nil {
		return err
	}
	envs := []string{envListen + "=" + formatListen(socks, 4)}
	if len(held) > 0 {
		envs = append(envs, envHeld+"="+strings.Join(held, ";"))
	}
	if statsPath != "" {
		envs = append(envs, envStats+"=|"+statsPath)
	}
	cmd, ready, err := startWithReady(exe, os.Args, envs, extra, nil)
	closeFiles(extra)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps the successor if it dies while we live
	select {
	case err := <-ready:
		if err == nil {
			log.Info("upgrade: the new process serves", "pid", cmd.Process.Pid)
			return nil
		}
		cmd.Process.Kill()
		return fmt.Errorf("upgrade: the new process (pid %d) failed before serving: %w", cmd.Process.Pid, errors.Join(err, <-exited))
	case <-ctx.Done():
		cmd.Process.Signal(os.Interrupt)
		return errors.New("upgrade: abandoned by a termination signal")
	}
}

// startWithReady starts exe with args (args[0] is the name it sees) and the
// extra environment, extra descriptors numbered from 4 on and a readiness
// pipe at descriptor 3. The returned channel yields nil when the process
// writes its readiness byte, or an error if it closes the pipe (exits)
// first or readyTimeout passes.
func startWithReady(exe string, args, envs []string, extra []*os.File, attr func(*exec.Cmd)) (*exec.Cmd, <-chan error, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(exe)
	cmd.Args = args
	cmd.Env = append(append(cleanEnv(), envs...), envReady+"="+strconv.Itoa(3))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = append([]*os.File{w}, extra...)
	if attr != nil {
		attr(cmd)
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	ready := make(chan error, 1)
	go func() {
		defer r.Close()
		r.SetReadDeadline(time.Now().Add(readyTimeout))
		var b [1]byte
		_, err := io.ReadFull(r, b[:])
		switch {
		case err == nil:
			ready <- nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			ready <- fmt.Errorf("not ready after %v", readyTimeout)
		default:
			ready <- errors.New("exited before it was ready")
		}
	}()
	return cmd, ready, nil
}
