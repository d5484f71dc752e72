package metrics

import (
	"sort"
	"strconv"
	"strings"

	"github.com/gale-server/gale/server"
)

// Metric family names. docs/observability.md describes each.
const (
	famRequests     = "gale_http_requests_total"
	famDuration     = "gale_http_request_duration_seconds"
	famBucket       = famDuration + "_bucket" // non-cumulative in samples
	famSumNs        = famDuration + "_sum_ns" // nanoseconds in samples
	famBadRequests  = "gale_http_bad_requests_total"
	famAccepted     = "gale_connections_accepted_total"
	famClosed       = "gale_connections_closed_total"
	famConnections  = "gale_connections"
	famAcceptPauses = "gale_accept_pauses_total"
	famBytesIn      = "gale_received_bytes_total"
	famBytesOut     = "gale_sent_bytes_total"
	famLoops        = "gale_event_loops"
	famLogLines     = "gale_access_log_lines_total"
	famLogDropped   = "gale_access_log_dropped_total"
	famTLS          = "gale_tls_handshakes_total"
	famPubSubTopics = "gale_pubsub_topics"
	famPubSubSubs   = "gale_pubsub_subscribers"
	famPubSubMsgs   = "gale_pubsub_messages_total"
)

// gauges are the families whose samples are current values, not cumulative:
// a process that is gone contributes nothing to them.
var gauges = map[string]bool{famConnections: true, famLoops: true, famPubSubTopics: true, famPubSubSubs: true, famH2Conns: true}

// Sample is one number of one process. Key is the series in the Prometheus
// text form, `family{label="value",...}`, values escaped as that format does
// (backslash, double quote and newline): most are names config validates, but
// a pub/sub hub is named by any string, its route's path by default (which may
// hold ',', '=' or '"').
type Sample struct {
	Key   string
	Value uint64
}

// family returns the family part of a key.
func family(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		return key[:i]
	}
	return key
}

// isGauge reports whether key is a gauge's series.
func isGauge(key string) bool { return gauges[family(key)] }

// labels parses the label pairs of a key, in order, unescaping the values;
// parsing stops at the first malformed pair.
func labels(key string) [][2]string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return nil
	}
	var out [][2]string
	rest := key[i+1:]
	for {
		name, after, ok := strings.Cut(rest, `="`)
		if !ok || name == "" || strings.ContainsAny(name, `,}"`) {
			return out
		}
		var val strings.Builder
		j := 0
		for ; j < len(after) && after[j] != '"'; j++ {
			c := after[j]
			if c == '\\' && j+1 < len(after) {
				j++
				c = after[j]
				if c == 'n' {
					c = '\n'
				}
			}
			val.WriteByte(c)
		}
		if j == len(after) {
			return out
		}
		out = append(out, [2]string{name, val.String()})
		rest = strings.TrimPrefix(after[j+1:], ",")
	}
}

// key builds a series key from a family and label name/value pairs.
func key(fam string, kv ...string) string {
	if len(kv) == 0 {
		return fam
	}
	var b strings.Builder
	b.WriteString(fam)
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		for _, c := range []byte(kv[i+1]) {
			switch c {
			case '\\', '"':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Extra adds samples owned by another part of the process (the access logs).
type Extra func(add func(Sample))

// Local returns this process's samples: the routes of reg, the server's
// counters and whatever the extras add. It allocates, and is meant for the
// publishing goroutine and scrapes, never an event loop.
func Local(reg *Registry, st server.Stats, extras ...Extra) []Sample {
	routes := reg.Routes()
	out := make([]Sample, 0, len(routes)*(len(codeClasses)+len(reg.bounds)+2)+16)
	add := func(s Sample) { out = append(out, s) }
	for _, rt := range routes {
		t := rt.Totals()
		for c, n := range t.Codes {
			if n > 0 || c == 2 {
				add(Sample{rt.keys.codes[c], n})
			}
		}
		for i, n := range t.Buckets {
			add(Sample{rt.keys.buckets[i], n})
		}
		add(Sample{rt.keys.sum, t.SumNs})
	}
	writing := int64(st.Requests - st.Done)
	waiting := st.Active - st.Reading - writing
	add(Sample{key(famConnections, "state", "reading"), uint64(max(st.Reading, 0))})
	add(Sample{key(famConnections, "state", "writing"), uint64(max(writing, 0))})
	add(Sample{key(famConnections, "state", "waiting"), uint64(max(waiting, 0))})
	add(Sample{famAccepted, st.Accepted})
	add(Sample{famClosed, st.Closed})
	add(Sample{famAcceptPauses, st.AcceptPauses})
	add(Sample{famBytesIn, st.BytesIn})
	add(Sample{famBytesOut, st.BytesOut})
	add(Sample{famBadRequests, st.BadRequests})
	add(Sample{famLoops, uint64(reg.Loops())})
	http2Samples(st.HTTP2, add)
	for _, e := range extras {
		e(add)
	}
	return out
}

// TLSSamples adds the TLS handshake counters of a process, for an Extra:
// handshakes that succeeded, failed (bad input, alerts; timeouts excluded),
// timed out, and were refused because the handshake pool was full.
func TLSSamples(ok, failed, timedOut, refused uint64, add func(Sample)) {
	add(Sample{key(famTLS, "result", "ok"), ok})
	add(Sample{key(famTLS, "result", "failed"), failed})
	add(Sample{key(famTLS, "result", "timeout"), timedOut})
	add(Sample{key(famTLS, "result", "refused"), refused})
}

// LogSamples returns the samples of one server's access log counters, for
// an Extra.
func LogSamples(server string, lines, dropped uint64, add func(Sample)) {
	add(Sample{key(famLogLines, "server", server), lines})
	add(Sample{key(famLogDropped, "server", server), dropped})
}

// PubSubSamples adds one pub/sub hub's presence and message counters, for an
// Extra: topics and subscriptions now, and messages published, frames delivered,
// messages dropped for slow subscribers, and subscribers closed for being slow.
func PubSubSamples(hub string, topics, subs, published, delivered, dropped, closed uint64, add func(Sample)) {
	add(Sample{key(famPubSubTopics, "hub", hub), topics})
	add(Sample{key(famPubSubSubs, "hub", hub), subs})
	add(Sample{key(famPubSubMsgs, "hub", hub, "event", "published"), published})
	add(Sample{key(famPubSubMsgs, "hub", hub, "event", "delivered"), delivered})
	add(Sample{key(famPubSubMsgs, "hub", hub, "event", "dropped"), dropped})
	add(Sample{key(famPubSubMsgs, "hub", hub, "event", "closed"), closed})
}

// Totals are samples summed over processes, by key.
type Totals map[string]uint64

// Add adds samples into t.
func (t Totals) Add(samples []Sample) {
	for _, s := range samples {
		t[s.Key] += s.Value
	}
}

// Get returns the value of the series fam with the given label pairs.
func (t Totals) Get(fam string, kv ...string) uint64 { return t[key(fam, kv...)] }

// Keys returns the keys, sorted.
func (t Totals) Keys() []string {
	out := make([]string, 0, len(t))
	for k := range t {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parseLe parses a le label back into seconds; +Inf is reported as ok=false.
func parseLe(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil && s != "+Inf"
}
