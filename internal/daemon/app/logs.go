package app

import (
	"errors"
	"fmt"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/metrics"
	"github.com/gale-server/gale/metrics/accesslog"
)

// logSet is the access logs of one configuration, by server index. Logs
// are kept by what they write (server name, path, format), so a reload
// that keeps a server's access_log keeps its log, its file and its counts.
type logSet struct {
	byServer []*accesslog.Log // nil where the server has no access log
	byKey    map[logKey]*accesslog.Log
}

type logKey struct{ server, path, format string }

// forServer returns the access log of server i, or nil.
func (s *logSet) forServer(i int) metrics.ResponseLogger {
	if s == nil || i >= len(s.byServer) || s.byServer[i] == nil {
		return nil
	}
	return s.byServer[i]
}

// openLogs opens the access logs cfg asks for, reusing those of prev that
// write the same thing. fresh lists the logs opened here (to close if the
// configuration is not applied after all).
func openLogs(cfg *config.Config, loops []*engine.Loop, prev *logSet) (set *logSet, fresh []*accesslog.Log, err error) {
	set = &logSet{byServer: make([]*accesslog.Log, len(cfg.Servers)), byKey: map[logKey]*accesslog.Log{}}
	for i := range cfg.Servers {
		al := cfg.Servers[i].AccessLog
		if al.Path == "" {
			continue
		}
		k := logKey{cfg.ServerName(i), al.Path, al.Format}
		l := set.byKey[k]
		if l == nil && prev != nil {
			l = prev.byKey[k]
		}
		if l == nil {
			format := accesslog.Combined
			if al.Format == config.AccessJSON {
				format = accesslog.JSON
			}
			l, err = accesslog.Open(accesslog.Options{Server: k.server, Path: al.Path, Format: format, Loops: loops})
			if err != nil {
				closeLogs(fresh)
				return nil, nil, fmt.Errorf("servers[%d].access_log: %w", i, err)
			}
			fresh = append(fresh, l)
		}
		set.byKey[k] = l
		set.byServer[i] = l
	}
	return set, fresh, nil
}

// closeLogs closes logs, writing what they hold.
func closeLogs(logs []*accesslog.Log) error {
	var errs []error
	for _, l := range logs {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// logExtras returns the metric sources of logs.
func logExtras(logs []*accesslog.Log) []metrics.Extra {
	out := make([]metrics.Extra, len(logs))
	for i, l := range logs {
		out[i] = l.Samples
	}
	return out
}

// ReopenLogs reopens every access log file (SIGUSR1, after logrotate moved
// them).
func (a *App) ReopenLogs() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, l := range a.allLogs {
		if err := l.Reopen(); err != nil && !errors.Is(err, accesslog.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
