package supervisor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gale-server/gale/config"
)

// envConfigFD is the descriptor of a file with no name from which a worker reads
// the text of the configuration its parent serves: the file as it was read at
// start or at the last successful reload. A worker started after a crash thus
// runs what the other workers run, as a worker nginx forks runs its master's
// configuration, rather than whatever the file holds by then: an edit not yet
// reloaded, or a file made invalid, which kept the worker from starting.
const envConfigFD = "GALE_CONFIG_FD"

// envConfigPath names the file beside the stats segment (configSuffix) in
// which a parent keeps the text of the configuration it last reloaded. A
// worker's SIGHUP reads the configuration from there rather than from the
// operator's file, which may have changed again since the parent validated
// it: every worker then applies what the parent applied.
const envConfigPath = "GALE_CONFIG_PATH"

// configSuffix is appended to the stats segment's path to name the file of
// envConfigPath; it is removed with the segment.
const configSuffix = ".config"

// publishConfig replaces the file at path with text, atomically (a worker
// never reads half of it) and readable by gale's user only (a configuration
// may hold tokens).
func publishConfig(path string, text []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// configFile returns a descriptor open on a copy of text, to pass to a worker
// as descriptor fd, and the variable that names it. The copy is a file with
// no name (anonFile): it may be larger than a pipe holds, and the worker
// reads it before it serves.
func configFile(text []byte, fd int) (*os.File, string, error) {
	f, err := anonFile("gale-config")
	if err != nil {
		return nil, "", err
	}
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

// unlinkedTemp creates a file in the temporary directory and removes its
// name at once.
func unlinkedTemp(name string) (*os.File, error) {
	f, err := os.CreateTemp("", name+"-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}

// WorkerConfig returns, in a worker process whose parent handed it the text
// of the configuration it serves, that configuration parsed as the file at
// path, and reload, which loads the configuration the parent reloaded when a
// SIGHUP comes (the file at path itself when the parent kept no copy). In any
// other process it returns nil, nil, nil: the process reads the file itself.
// It reads and closes the descriptor and removes the variables, so it must be
// called once, before Run.
func WorkerConfig(path string) (cfg *config.Config, reload func() (*config.Config, error), err error) {
	v, kept := os.Getenv(envConfigFD), os.Getenv(envConfigPath)
	os.Unsetenv(envConfigFD)
	os.Unsetenv(envConfigPath)
	if v == "" {
		return nil, nil, nil
	}
	reload = func() (*config.Config, error) {
		if kept != "" {
			if text, err := readConfigCopy(kept); err == nil {
				return config.LoadText(path, text)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
		return config.Load(path)
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, nil, fmt.Errorf("%s=%q: not a descriptor", envConfigFD, v)
	}
	f := os.NewFile(uintptr(fd), "config")
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, config.MaxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: reading the configuration from the parent: %w", envConfigFD, err)
	}
	cfg, err = config.LoadText(path, text)
	return cfg, reload, err
}

// readConfigCopy reads the parent's copy of the configuration at path.
func readConfigCopy(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, config.MaxFileSize+1))
}
