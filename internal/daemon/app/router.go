package app

import (
	"strings"

	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/server"
)

// Router is the handler of one virtual server: it tries its routes in order and
// hands the request to the first that matches, or answers 404. It is immutable once
// built, so every loop can share it; a reload builds a new one.
type Router struct {
	routes []route
}

var _ server.Handler = (*Router)(nil)

// route is one compiled match plus its action.
type route struct {
	prefix     string   // path prefix ("" matches every path)
	exact      string   // exact path, "" when unused
	host       string   // lower-case host, or the suffix (".example.com") when wildcard
	wildcard   bool     // host was "*.suffix"
	methods    []string // upper-case methods; empty matches any
	handler    server.Handler
	actionName string
}

// ServeGale dispatches the request.
func (r *Router) ServeGale(c *server.Ctx) {
	req := c.Request()
	for i := range r.routes {
		rt := &r.routes[i]
		if rt.matches(req.Method, req.Path, req.Host) {
			rt.handler.ServeGale(c)
			return
		}
	}
	c.Error(404, "no route matches")
}

func (rt *route) matches(method, path, host []byte) bool {
	if rt.exact != "" && string(path) != rt.exact {
		return false
	}
	if rt.prefix != "" && !strings.HasPrefix(string(path), rt.prefix) {
		return false
	}
	if len(rt.methods) > 0 {
		ok := false
		for _, m := range rt.methods {
			if string(method) == m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if rt.host != "" {
		h := hostOnly(host)
		if rt.wildcard {
			if len(h) <= len(rt.host) || !asciiHasSuffixFold(h, rt.host) {
				return false
			}
		} else if !http1.EqualFold(h, rt.host) {
			return false
		}
	}
	return true
}

// hostOnly strips a port from a Host value ("example.com:8080", "[::1]:80").
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := indexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return h
	}
	if i := indexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func asciiHasSuffixFold(b []byte, suffix string) bool {
	return len(b) >= len(suffix) && http1.EqualFold(b[len(b)-len(suffix):], suffix)
}
