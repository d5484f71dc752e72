package app

import "github.com/gale-server/gale/metrics"

// logSet is the access logs of one configuration, by server index.
type logSet struct {
	byServer []metrics.ResponseLogger
}

// forServer returns the access log of server i, or nil.
func (s *logSet) forServer(i int) metrics.ResponseLogger {
	if s == nil || i >= len(s.byServer) {
		return nil
	}
	return s.byServer[i]
}
