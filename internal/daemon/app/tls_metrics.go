package app

import "github.com/gale-server/gale/metrics"

// tlsSamples is the metrics.Extra of the TLS handshakes: the counters of the
// handshake pool every TLS listener of the process shares (cumulative across
// reloads, since the pool lives as long as the App).
func (a *App) tlsSamples(add func(metrics.Sample)) {
	st := a.pool.Stats()
	metrics.TLSSamples(st.Completed, st.Failed-st.TimedOut, st.TimedOut, st.Refused, add)
}
