// Package respond is the `respond` route action: a fixed status, fields and body,
// like nginx's `return` or Caddy's `respond`. It is a feature beside static and uses
// only the protocol-neutral server.Exchange, so the same value answers HTTP/1.1
// requests now and HTTP/2 streams later.
package respond

import (
	"slices"
	"strconv"

	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/server"
)

// Handler answers every request with the same response. Its field lines are rendered
// once, so serving it costs one body copy and no allocation. It is immutable and
// shared by every loop.
type Handler struct {
	status int
	body   []byte
	lines  []byte // pre-rendered "Name: value\r\n" lines
}

var (
	_ server.Handler         = (*Handler)(nil)
	_ server.ExchangeHandler = (*Handler)(nil)
)

// ConfigError is an invalid respond setting; the config layer adds file:line:column.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// serverFields are computed by the protocol and may not be configured.
var serverFields = []string{"content-length", "transfer-encoding", "connection"}

// New builds a fixed response. status must be 200–999 (1xx are not final responses);
// header names must be tokens and values valid field values; Content-Length,
// Transfer-Encoding and Connection belong to the protocol and are refused. Fields are
// sent in sorted-name order.
func New(status int, headers map[string]string, body string) (*Handler, error) {
	if status < 200 || status > 999 {
		return nil, &ConfigError{Msg: "respond status must be between 200 and 999, got " + strconv.Itoa(status)}
	}
	r := &Handler{status: status, body: []byte(body)}
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !http1.ValidField(k, headers[k]) {
			return nil, &ConfigError{Msg: "respond header " + strconv.Quote(k) + " has an invalid name or value"}
		}
		for _, f := range serverFields {
			if http1.EqualFold(k, f) {
				return nil, &ConfigError{Msg: "respond header " + k + " is set by the server and cannot be configured"}
			}
		}
		r.lines = http1.AppendHeader(r.lines, k, headers[k])
	}
	return r, nil
}

// Status returns the configured status.
func (r *Handler) Status() int { return r.status }

// ServeGale writes the fixed response on an HTTP/1.1 connection.
func (r *Handler) ServeGale(c *server.Ctx) { r.ServeExchange(c) }

// ServeExchange writes the fixed response through any protocol. A status that
// forbids a body (204, 304) is sent without one.
func (r *Handler) ServeExchange(x server.Exchange) {
	x.Header().AppendRaw(r.lines)
	x.SetContentLength(int64(len(r.body)))
	x.WriteHeader(r.status)
	if len(r.body) > 0 {
		x.Write(r.body)
	}
	x.End()
}
