package nethttp

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/gale-server/gale/server"
)

// Options configure an adapter made with AdaptOptions; the zero value gives what
// Adapt gives.
type Options struct {
	// ResponseTimeout, when positive, bounds how long a handler may go without
	// progress: a Write, a Flush, a WriteHeader (1xx included) or a body Read that
	// returns. A handler blocked in a body Read or in a write that waits for the
	// client is progressing (the server's body and write timeouts bound the client
	// there). When it expires the request context is cancelled, the handler's later
	// writes fail, and the client gets 504 if nothing was sent yet, else the
	// connection is aborted (HTTP/2: the stream is reset). Zero or negative: no
	// bound, as net/http's server has none without a WriteTimeout, so long polls
	// and event streams run as long as their handler does.
	ResponseTimeout time.Duration
	// BaseContext, when set, is called once, by AdaptOptions, for the context every
	// request's context derives from, as net/http's Server.BaseContext is called
	// per listener: its values are the requests' values, its deadline theirs, and
	// requests are cancelled when it is done. It must not return nil.
	BaseContext func() context.Context
}

// AdaptOptions is Adapt with options.
func AdaptOptions(h http.Handler, p *server.Pool, o Options) server.Handler {
	a := &adapter{h: h, pool: p, timeout: o.ResponseTimeout, srv: &http.Server{Handler: h}}
	if o.BaseContext != nil {
		if a.base = o.BaseContext(); a.base == nil {
			panic("nethttp: Options.BaseContext returned a nil context")
		}
		a.vals = context.WithoutCancel(a.base)
	}
	return a
}

// watchBase cancels the request's context once the adapter's base context is
// done; on the handler goroutine, before the handler runs. The returned stop
// undoes it (nil when there is nothing to stop).
func (x *exchange) watchBase() (stop func() bool) {
	if b := x.ctx.base; b != nil && b.Done() != nil {
		return context.AfterFunc(b, func() { x.ctx.cancelWith(b.Err()) })
	}
	return nil
}

// localAddrer is an exchange that knows its connection's local address (the
// server's HTTP/2 streams).
type localAddrer interface{ LocalAddr() netip.AddrPort }

// localAddr returns the connection's local address, the value of
// http.LocalAddrContextKey, or nil once the client has gone. The first call asks
// the loop (a getsockname there, which is why no request pays for it up front);
// any goroutine.
func (x *exchange) localAddr() *net.TCPAddr {
	x.localOnce.Do(func() {
		ch := make(chan netip.AddrPort, 1)
		x.postRaw(func() {
			var ap netip.AddrPort
			switch {
			case x.gone():
			case x.c != nil:
				ap = x.c.Conn().LocalAddr()
			default:
				if la, ok := x.ex.(localAddrer); ok {
					ap = la.LocalAddr()
				}
			}
			ch <- ap
		})
		select {
		case ap := <-ch:
			if ap.IsValid() {
				x.local = net.TCPAddrFromAddrPort(ap)
			}
		case <-x.ctx.Done():
		}
	})
	return x.local
}
