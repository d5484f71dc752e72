package metrics

import (
	"github.com/gale-server/gale/http2"
	"github.com/gale-server/gale/server"
)

// HTTP/2 metric families (docs/observability.md).
const (
	famH2Conns      = "gale_http2_connections"
	famH2ConnsTotal = "gale_http2_connections_total"
	famH2Streams    = "gale_http2_streams_total"
	famH2Resets     = "gale_http2_resets_total"
	famH2GoAways    = "gale_http2_goaways_sent_total"
	famH2Glitches   = "gale_http2_glitches_total"
)

// h2Keys are the series keys of the labelled HTTP/2 families, built once.
var h2Keys = func() (k struct {
	resetsIn, resetsOut string
	goAways             [http2.NumErrCodes + 1]string
	glitches            [http2.NumGlitchKinds]string
}) {
	k.resetsIn = key(famH2Resets, "direction", "received")
	k.resetsOut = key(famH2Resets, "direction", "sent")
	for i := range k.goAways {
		name := "unknown"
		if i < http2.NumErrCodes {
			name = http2.ErrCode(i).String()
		}
		k.goAways[i] = key(famH2GoAways, "code", name)
	}
	for i := range k.glitches {
		k.glitches[i] = key(famH2Glitches, "kind", http2.GlitchKind(i).String())
	}
	return k
}()

// http2Samples adds a process's HTTP/2 counters: connections open and started,
// streams, resets both ways, GOAWAYs by code and glitches by kind.
func http2Samples(st server.HTTP2Stats, add func(Sample)) {
	add(Sample{famH2Conns, st.Conns - min(st.ConnsClosed, st.Conns)})
	add(Sample{famH2ConnsTotal, st.Conns})
	add(Sample{famH2Streams, st.StreamsOpened})
	add(Sample{h2Keys.resetsIn, st.ResetsReceived})
	add(Sample{h2Keys.resetsOut, st.ResetsSent})
	for i, n := range st.GoAwaysSent {
		add(Sample{h2Keys.goAways[i], n})
	}
	for i, n := range st.Glitches {
		add(Sample{h2Keys.glitches[i], n})
	}
}
