package health

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gale-server/gale/server"
)

// API is the runtime upstream API of the admin listener (docs/health.md):
//
//	GET  /upstreams                          every group's state
//	GET  /upstreams/NAME                     one group's state
//	POST /upstreams/NAME/servers/SERVER      {"action": "drain"|"enable", "weight": N}
//
// SERVER is the server's address (ip:port) or its index. Changes apply at once,
// without a reload, and last until the next reload that rebuilds the upstream.
// Answers are JSON; errors are JSON {"error": "..."} with 400, 404 or 405.
type API struct {
	// Groups returns the running configuration's groups.
	Groups func() []*Group
}

var _ server.Handler = (*API)(nil)

// Prefix is the path under which API answers.
const Prefix = "/upstreams"

// ServeGale answers one API request.
func (a *API) ServeGale(c *server.Ctx) {
	req := c.Request()
	rest := strings.TrimPrefix(string(req.NormPath), Prefix)
	rest = strings.Trim(rest, "/")
	var parts []string
	if rest != "" {
		parts = strings.Split(rest, "/")
	}
	method := string(req.Method)
	switch {
	case len(parts) == 0 && (method == "GET" || method == "HEAD"):
		out := struct {
			Upstreams []GroupStatus `json:"upstreams"`
		}{Upstreams: []GroupStatus{}}
		for _, g := range a.Groups() {
			out.Upstreams = append(out.Upstreams, g.Status())
		}
		reply(c, 200, out)
	case len(parts) == 1 && (method == "GET" || method == "HEAD"):
		g := a.group(parts[0])
		if g == nil {
			replyError(c, 404, "no upstream named %q with health state", parts[0])
			return
		}
		reply(c, 200, g.Status())
	case len(parts) == 3 && parts[1] == "servers" && method == "POST":
		g := a.group(parts[0])
		if g == nil {
			replyError(c, 404, "no upstream named %q with health state", parts[0])
			return
		}
		i := g.find(parts[2])
		if i < 0 {
			replyError(c, 404, "upstream %q has no server %q (use its ip:port or index)", parts[0], parts[2])
			return
		}
		c.ReadBody(func(body []byte) { a.change(c, g, i, body) })
	case len(parts) == 3 && parts[1] == "servers" || len(parts) <= 1:
		c.Header().Set("Allow", map[bool]string{true: "POST", false: "GET, HEAD"}[len(parts) == 3])
		replyError(c, 405, "method %s is not allowed here", method)
	default:
		replyError(c, 404, "endpoints: GET /upstreams, GET /upstreams/NAME, POST /upstreams/NAME/servers/SERVER")
	}
}

// change is the body of a POST: {"action": "drain"|"enable", "weight": N}.
type change struct {
	Action string `json:"action"`
	Weight *int   `json:"weight"`
}

func (a *API) change(c *server.Ctx, g *Group, i int, body []byte) {
	var ch change
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	err := dec.Decode(&ch)
	if err == nil && dec.More() {
		// A second value would be ignored: {"weight": 2}{"action": "drain"} must
		// not half apply.
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		replyError(c, 400, "invalid JSON body: %v (expected {\"action\": \"drain\"|\"enable\", \"weight\": N})", err)
		return
	}
	if ch.Action != "" && ch.Action != "drain" && ch.Action != "enable" {
		replyError(c, 400, "unknown action %q: expected drain or enable", ch.Action)
		return
	}
	if ch.Action == "" && ch.Weight == nil {
		replyError(c, 400, "nothing to change: give an action or a weight")
		return
	}
	if ch.Weight != nil {
		if err := g.SetWeight(i, *ch.Weight); err != nil {
			replyError(c, 400, "%v", err)
			return
		}
	}
	switch ch.Action {
	case "drain":
		g.Drain(i)
	case "enable":
		g.Enable(i)
	}
	reply(c, 200, g.Status().Servers[i])
}

func (a *API) group(name string) *Group {
	for _, g := range a.Groups() {
		if g.Name() == name {
			return g
		}
	}
	return nil
}

// find returns the index of the server named by s: its address, its configured
// name or its index.
func (g *Group) find(s string) int {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return g.Index(ap)
	}
	for i := range g.srv {
		if g.srv[i].name == s {
			return i
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < len(g.srv) {
		return n
	}
	return -1
}

func reply(c *server.Ctx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.Error(500, err.Error())
		return
	}
	c.Header().Set("Cache-Control", "no-store")
	c.Respond(status, "application/json", append(b, '\n'))
}

func replyError(c *server.Ctx, status int, format string, args ...any) {
	reply(c, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}
