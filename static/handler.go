package static

import (
	"time"

	"github.com/gale-server/gale/server"
)

var _ server.Handler = (*Handler)(nil)

// ServeGale serves one request inline on the connection's loop. It never waits on the
// network; file opens, fstat and small reads happen on the loop (like nginx without
// aio threads), mostly avoided by the open-file cache, and bodies leave with sendfile.
// It acts on the request's NormPath, the path routing matched; a request without one
// (built by hand) has its Path normalized by the same function.
func (h *Handler) ServeGale(c *server.Ctx) {
	r := c.Request()
	if r.NormPath == nil {
		h.serveRaw((*galeCtx)(c), r.Method, r.Path, r.Query)
		return
	}
	h.serve((*galeCtx)(c), r.Method, r.NormPath, r.Query)
}

// galeCtx adapts *server.Ctx to exchange without allocating: it is the same struct
// seen through a local type.
type galeCtx server.Ctx

func (g *galeCtx) ctx() *server.Ctx { return (*server.Ctx)(g) }

func (g *galeCtx) ReqHeader(name string) ([]byte, bool) { return g.ctx().Request().Header(name) }
func (g *galeCtx) IsHead() bool                         { return g.ctx().IsHead() }
func (g *galeCtx) Now() time.Time                       { return g.ctx().Now() }
func (g *galeCtx) SetHeader(name, value string)         { g.ctx().Header().Set(name, value) }
func (g *galeCtx) AppendHeader(lines []byte)            { g.ctx().Header().AppendRaw(lines) }
func (g *galeCtx) SetContentLength(n int64)             { g.ctx().SetContentLength(n) }
func (g *galeCtx) WriteHeader(status int)               { g.ctx().WriteHeader(status) }
func (g *galeCtx) Write(p []byte) (int, error)          { return g.ctx().Write(p) }
func (g *galeCtx) End()                                 { g.ctx().End() }
func (g *galeCtx) Error(status int, msg string)         { g.ctx().Error(status, msg) }
func (g *galeCtx) SendFile(fd int, off, n int64, release func()) {
	g.ctx().SendFile(fd, off, n, release)
}
func (g *galeCtx) Respond(status int, contentType string, body []byte) {
	g.ctx().Respond(status, contentType, body)
}
