package supervisor

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/gale-server/gale/config"
)

// envConfigFD is the descriptor of an unlinked file from which a worker reads
// the text of the configuration its parent serves: the file as it was read at
// start or at the last successful reload. A worker started after a crash thus
// runs what the other workers run, as a worker nginx forks runs its master's
// configuration, rather than whatever the file holds by then: an edit not yet
// reloaded, or a file made invalid, which kept the worker from starting.
const envConfigFD = "GALE_CONFIG_FD"

// configFile returns a descriptor open on a copy of text, to pass to a worker
// as descriptor fd, and the variable that names it. The copy lives in an
// unlinked file of the temporary directory: it may be larger than a pipe
// holds, and the worker reads it before it serves.
func configFile(text []byte, fd int) (*os.File, string, error) {
	f, err := os.CreateTemp("", "gale-config-*")
	if err != nil {
		return nil, "", err
	}
	os.Remove(f.Name())
	if _, err := f.Write(text); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("writing the configuration for a worker: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, "", err
	}
	return f, envConfigFD + "=" + strconv.Itoa(fd), nil
}

// WorkerConfig returns, in a worker process whose parent handed it the text
// of the configuration it serves, that configuration parsed as the file at
// path; ok is false in any other process, which reads the file itself. It
// reads and closes the descriptor and removes the variable, so it must be
// called once, before Run.
func WorkerConfig(path string) (cfg *config.Config, ok bool, err error) {
	v := os.Getenv(envConfigFD)
	if v == "" {
		return nil, false, nil
	}
	os.Unsetenv(envConfigFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, true, fmt.Errorf("%s=%q: not a descriptor", envConfigFD, v)
	}
	f := os.NewFile(uintptr(fd), "config")
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, config.MaxFileSize+1))
	if err != nil {
		return nil, true, fmt.Errorf("%s: reading the configuration from the parent: %w", envConfigFD, err)
	}
	cfg, err = config.LoadText(path, text)
	return cfg, true, err
}
