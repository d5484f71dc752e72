package metrics

import (
	"bytes"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"strings"
	"time"

	"github.com/gale-server/gale/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

//go:embed status.html
var statusPage []byte

// Admin is the native handler of the admin listener. Endpoints that compute
// (/metrics, /status.json) leave the loop: the Ctx is detached, the work runs
// on a goroutine (reading other processes' tables, encoding) and the
// response is posted back, so a scrape never stalls the connections that
// share the loop.
type Admin struct {
	opts AdminOptions
	reg  *prometheus.Registry
}

var _ server.Handler = (*Admin)(nil)

// AdminOptions configure an Admin.
type AdminOptions struct {
	// Process supplies the numbers.
	Process *Process
	// Started is when the instance started, /status.json's started; zero
	// means when Process was made.
	Started time.Time
	// Token, when not empty, must arrive as "Authorization: Bearer TOKEN".
	Token string
	// Ready reports whether the instance takes traffic (/readyz); nil means
	// always.
	Ready func() bool
	// Info adds what only the supervising layer knows (worker processes,
	// reload history) to /status.json; nil adds nothing.
	Info func() Info
	// Upstreams, when set, serves /upstreams and every path below it (the
	// runtime upstream API, health.API), behind the same token.
	Upstreams server.Handler
	// Collectors are registered beside the process's own metrics.
	Collectors []prometheus.Collector
	// Features, when set, are answered with the process's metrics, their
	// counters summed over the instance's processes (their Samples must be
	// among the Process's extras).
	Features *Features
}

// Info is the part of the status that the daemon layer supplies.
type Info struct {
	Config  string   `json:"config"`
	Workers []Worker `json:"workers"`
	Reloads []Reload `json:"reloads"`
	Loops   []Loop   `json:"loops"` // this process's loops
	// Upstreams is the state of the upstream groups with health (a list of
	// health.GroupStatus, as the admin API's GET /upstreams); nil when none.
	Upstreams any `json:"upstreams,omitempty"`
}

// Worker is one worker process's row of the stats segment.
type Worker struct {
	Slot     int    `json:"slot"`
	PID      int    `json:"pid"`
	Worker   int    `json:"worker"`
	Live     bool   `json:"live"`
	Requests uint64 `json:"requests"`
	Active   uint64 `json:"active"`
}

// Reload is one configuration reload.
type Reload struct {
	Time  time.Time `json:"time"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
}

// Loop is one event loop of the process that answered.
type Loop struct {
	ID       int    `json:"id"`
	Accepted uint64 `json:"accepted"`
	Active   int64  `json:"active"`
}

// NewAdmin returns the admin handler.
func NewAdmin(o AdminOptions) *Admin {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(o.Process).WithFeatures(o.Features))
	reg.MustRegister(o.Collectors...)
	return &Admin{opts: o, reg: reg}
}

// ServeGale answers one admin request.
func (a *Admin) ServeGale(c *server.Ctx) {
	req := c.Request()
	path := string(req.NormPath)
	page := path == "/status" || path == "/status/" || path == "/"
	// The page itself holds no data and may load without the token (a
	// browser cannot send one when navigating); it sends the token, taken
	// from its URL fragment, with each poll of /status.json.
	if a.opts.Token != "" && !page && !a.authorized(req.Header) {
		c.Header().Set("WWW-Authenticate", `Bearer realm="gale admin"`)
		c.Respond(401, "text/plain; charset=utf-8", []byte("Unauthorized: a bearer token is required\n"))
		return
	}
	if a.opts.Upstreams != nil && (path == "/upstreams" || strings.HasPrefix(path, "/upstreams/")) {
		a.opts.Upstreams.ServeGale(c)
		return
	}
	if m := string(req.Method); m != "GET" && m != "HEAD" {
		c.Header().Set("Allow", "GET, HEAD")
		c.Respond(405, "text/plain; charset=utf-8", []byte("Method Not Allowed\n"))
		return
	}
	switch {
	case page:
		c.Header().Set("Cache-Control", "no-store")
		c.Respond(200, "text/html; charset=utf-8", statusPage)
	case path == "/metrics":
		a.offLoop(c, a.metrics)
	case path == "/status.json":
		a.offLoop(c, a.statusJSON)
	case path == "/healthz":
		c.Respond(200, "text/plain; charset=utf-8", []byte("ok\n"))
	case path == "/readyz":
		if a.opts.Ready != nil && !a.opts.Ready() {
			c.Respond(503, "text/plain; charset=utf-8", []byte("draining\n"))
			return
		}
		c.Respond(200, "text/plain; charset=utf-8", []byte("ready\n"))
	default:
		c.Error(404, "admin endpoints: /metrics /status /status.json /healthz /readyz")
	}
}

// authorized checks the bearer token in constant time.
func (a *Admin) authorized(header func(string) ([]byte, bool)) bool {
	v, ok := header("Authorization")
	const prefix = "Bearer "
	if !ok || len(v) < len(prefix) || !bytes.EqualFold(v[:len(prefix)], []byte(prefix)) {
		return false
	}
	return subtle.ConstantTimeCompare(bytes.TrimSpace(v[len(prefix):]), []byte(a.opts.Token)) == 1
}

// offLoop runs produce on a goroutine and posts its response to the loop.
func (a *Admin) offLoop(c *server.Ctx, produce func() (string, []byte, error)) {
	c.Detach()
	go func() {
		ctype, body, err := produce()
		c.Post(func() {
			c.Header().Set("Cache-Control", "no-store")
			if err != nil {
				// Respond rather than Error, which would drop the field set above.
				c.Respond(500, "text/plain; charset=utf-8", []byte("Internal Server Error: "+err.Error()+"\n"))
				return
			}
			c.Respond(200, ctype, body)
		})
	}()
}

// metrics renders the Prometheus text format.
func (a *Admin) metrics() (string, []byte, error) {
	mfs, err := a.reg.Gather()
	if err != nil {
		return "", nil, err
	}
	var buf bytes.Buffer
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return "", nil, err
		}
	}
	return string(format), buf.Bytes(), nil
}

// statusJSON renders /status.json.
func (a *Admin) statusJSON() (string, []byte, error) {
	t, procs := a.opts.Process.Instance()
	started := a.opts.Started
	if started.IsZero() {
		started = a.opts.Process.Started()
	}
	st := Status{
		Version: Version, Time: time.Now(), Started: started, Processes: procs,
		Connections: map[string]uint64{},
	}
	if a.opts.Info != nil {
		st.Info = a.opts.Info()
	}
	st.fill(t)
	b, err := json.Marshal(&st)
	return "application/json", b, err
}
