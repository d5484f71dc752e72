package l4

import (
	"log/slog"
	"time"

	"github.com/gale-server/gale/engine"
)

// Tunnels relays pairs of connections that another part of gale established
// and hands over already connected — the HTTP proxy's upgraded WebSocket
// connections — with this package's relay: each FIN passed on once what came
// before it is sent, resets propagated, backpressure both ways, an idle
// timeout, and splice(2) through the loop's pooled pipes once a direction has
// moved SpliceAfter bytes (both connections must be plain TCP sockets: not
// under a TLS layer). Its counters and pipe pools are its only state.
type Tunnels struct {
	px   *Proxy
	open *joinHandler
}

// joinHandler is the client side's handler before Join: a downHandler whose
// OnOpen starts nothing, since Join sets the relay up.
type joinHandler struct{ downHandler }

var (
	_ engine.Handler           = (*joinHandler)(nil)
	_ engine.FlushHandler      = (*joinHandler)(nil)
	_ engine.ReadNotifyHandler = (*joinHandler)(nil)
)

// OnOpen does nothing: the connection is already relayed, or is about to be.
func (*joinHandler) OnOpen(*engine.Conn) {}

// NewTunnels returns a relay for joined pairs on eng's loops. idle closes a
// pair that moved no byte for it (default 1h); spliceAfter is the bytes a
// direction copies before it splices (0: never).
func NewTunnels(eng *engine.Engine, idle time.Duration, spliceAfter int64, log *slog.Logger) *Tunnels {
	if idle <= 0 {
		idle = time.Hour
	}
	if log == nil {
		log = slog.Default()
	}
	px := &Proxy{opt: Options{IdleTimeout: idle, SpliceAfter: spliceAfter, Logger: log}, eng: eng,
		loops: make([]perLoop, len(eng.Loops()))}
	px.down, px.up = &downHandler{px}, &upHandler{px}
	return &Tunnels{px: px, open: &joinHandler{downHandler{px}}}
}

// Handler is the handler to give the client connection (server.Ctx.Upgrade)
// right before Join.
func (t *Tunnels) Handler() engine.Handler { return t.open }

// Join relays between down, whose handler is Handler, and up, an established
// connection whose handler it replaces. It runs on their loop (both must be
// owned by it). Bytes either side already holds unread are relayed first.
func (t *Tunnels) Join(down, up *engine.Conn) {
	px := t.px
	px.stats.accepted.Add(1)
	px.stats.active.Add(1) // given back by the client side's OnClose
	l := down.Loop()
	p := &pair{px: px, down: down, up: up, client: down.RemoteAddr(), state: stRelaying, last: l.Now()}
	p.dirs[0] = dir{p: p, src: down, dst: up}
	p.dirs[1] = dir{p: p, src: up, dst: down}
	down.SetContext(p)
	up.SetContext(p)
	down.SetOutputPausesRead(false) // each direction paces its own source (dir.copy)
	up.SetOutputPausesRead(false)
	up.SetHandler(px.up)
	p.idle = l.AfterFunc(px.opt.IdleTimeout, p.checkIdle)
	down.ResumeRead()
	up.ResumeRead()
}

// Stats returns the tunnels' counters (Accepted counts joined pairs).
func (t *Tunnels) Stats() Stats { return t.px.Stats() }
