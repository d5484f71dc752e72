package app

import (
	"fmt"

	"github.com/gale-server/gale/config"
	"github.com/gale-server/gale/respond"
	"github.com/gale-server/gale/server"
)

// buildAction turns a route's action into its handler.
func buildAction(r *config.Route, env *actionEnv) (server.Handler, error) {
	switch {
	case r.Respond != nil:
		return respond.New(r.Respond.Status, r.Respond.Headers, r.Respond.Body)
	case r.Static != nil:
		return buildStatic(r.Static, r.Match.Path, env.log)
	case r.Proxy != nil:
		return env.buildProxy(r.Proxy)
	case r.WebSocket != nil:
		return buildWebSocket(r.WebSocket)
	case r.PubSub != nil:
		return env.buildPubSub(r.PubSub, r.Match.Path)
	}
	return nil, fmt.Errorf("route has no action")
}
