package static

import (
	"github.com/gale-server/gale/server"
)

var (
	_ server.Handler         = (*Handler)(nil)
	_ server.ExchangeHandler = (*Handler)(nil)
)

// ServeGale serves one request inline on the connection's loop. It never waits on the
// network; file opens, fstat and small reads happen on the loop (like nginx without
// aio threads), mostly avoided by the open-file cache, and bodies leave with sendfile.
func (h *Handler) ServeGale(c *server.Ctx) { h.serve(c) }

// ServeExchange serves one request through any protocol's Exchange, with the same
// behaviour as ServeGale.
func (h *Handler) ServeExchange(x server.Exchange) { h.serve(x) }
