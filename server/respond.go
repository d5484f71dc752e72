package server

import (
	"strconv"
	"strings"

	"github.com/gale-server/gale/http1"
)

// Respond is the `respond` route action: a fixed status, headers and body, like
// nginx's `return` or Caddy's `respond`. Its header lines are rendered once, so
// serving it costs one buffer copy and no allocation.
type Respond struct {
	status int
	body   []byte
	lines  []byte // pre-rendered header lines including Content-Length
}

var _ Handler = (*Respond)(nil)

// NewRespond builds a fixed response. headers are sent in sorted-key order.
func NewRespond(status int, headers map[string]string, body string) (*Respond, error) {
	if status < 200 || status > 999 {
		return nil, &ConfigError{Msg: "respond status must be between 200 and 999, got " + strconv.Itoa(status)}
	}
	r := &Respond{status: status, body: []byte(body)}
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		if !validField(k, headers[k]) {
			return nil, &ConfigError{Msg: "respond header " + strconv.Quote(k) + " has an invalid name or value"}
		}
		switch strings.ToLower(k) {
		case "content-length", "transfer-encoding", "connection":
			return nil, &ConfigError{Msg: "respond header " + k + " is set by the server and cannot be configured"}
		}
		r.lines = http1.AppendHeader(r.lines, k, headers[k])
	}
	return r, nil
}

// ServeGale writes the fixed response.
func (r *Respond) ServeGale(c *Ctx) {
	c.hdr.AppendRaw(r.lines)
	c.clen = int64(len(r.body))
	if !bodyAllowed(r.status) {
		c.clen = 0
	}
	c.WriteHeader(r.status)
	if !c.isHead && len(r.body) > 0 && bodyAllowed(r.status) {
		c.ec.Write(r.body)
		c.written = int64(len(r.body))
	}
	c.End()
}

// ConfigError is an invalid handler setting; the config layer adds file:line:column.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func sortStrings(a []string) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}
