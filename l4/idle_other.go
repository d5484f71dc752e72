//go:build !linux

package l4

import "github.com/gale-server/gale/engine"

// delivery reports a token that changes as c's queued output is sent (the
// bytes the engine holds for it) and whether any is queued: without TCP_INFO
// only the engine's own queue shows delivery.
func delivery(c *engine.Conn) (token uint64, inFlight bool) {
	return uint64(c.Buffered()), c.Pending()
}
