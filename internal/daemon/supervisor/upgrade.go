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
	"strconv"
	"time"
)

// readyTimeout bounds how long an old process waits for its successor, or a
// parent for a new worker, to say that it serves.
var readyTimeout = 60 * time.Second

// upgrade starts the binary at this process's path again (the file may have
// been replaced by a new version) with the same arguments, hands it socks
// and the stats segment at statsPath, and waits until it reports that it
// serves. On error the successor, if it started, is stopped and this process
// is expected to keep serving.
func upgrade(ctx context.Context, log *slog.Logger, socks sockets, statsPath string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("upgrade: cannot find this binary: %w", err)
	}
	log.Info("upgrade: starting the new binary", "path", exe)
	extra, err := files(socks)
	if err != nil {
		return err
	}
	envs := []string{envListen + "=" + formatListen(socks, 4)}
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
