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
	LogResponse(x server.Observed, route string, status int, d time.Duration)
}

// Observer records the responses of one route: its counters (when Route is
// set) and its server's access log (when Log is set). The router attaches
// it to each request, HTTP/1.1 or HTTP/2 stream, with Observe; it holds no
// per-request state.
type Observer struct {
	Route *Route
	Name  string // the route's name, for the log
	Log   ResponseLogger
}

var _ server.ResponseObserver = (*Observer)(nil)

// ResponseDone counts and logs one response.
func (o *Observer) ResponseDone(x server.Observed) {
	d := time.Since(x.Began())
	status := x.Status()
	if !x.Ended() && !x.HeadSent() {
		status = StatusClientClosed
	}
	if o.Route != nil {
		o.Route.Observe(x.LoopID(), status, d)
	}
	if o.Log != nil {
		o.Log.LogResponse(x, o.Name, status, d)
	}
}
