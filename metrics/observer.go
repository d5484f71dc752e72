package metrics

import (
	"time"

	"github.com/gale-server/gale/server"
)

// StatusClientClosed is the status counted and logged for a request whose
// connection closed before any of its response was sent (nginx's 499). A
// response cut after its head (or a hijacked connection, such as a
// WebSocket after 101) keeps the status it sent.
const StatusClientClosed = 499

// ResponseLogger writes one access log line per response; the access log
// implements it. LogResponse runs on the request's loop and must not block.
type ResponseLogger interface {
	LogResponse(c *server.Ctx, route string, status int, d time.Duration)
}

// Observer records the responses of one route: its counters (when Route is
// set) and its server's access log (when Log is set). The router attaches
// it to each request with Ctx.Observe; it holds no per-request state.
type Observer struct {
	Route *Route
	Name  string // the route's name, for the log
	Log   ResponseLogger
}

var _ server.ResponseObserver = (*Observer)(nil)

// ResponseDone counts and logs one response.
func (o *Observer) ResponseDone(c *server.Ctx) {
	d := time.Since(c.Began())
	status := c.Status()
	if !c.Ended() && !c.HeadSent() {
		status = StatusClientClosed
	}
	if o.Route != nil {
		o.Route.Observe(c.Loop().ID(), status, d)
	}
	if o.Log != nil {
		o.Log.LogResponse(c, o.Name, status, d)
	}
}
