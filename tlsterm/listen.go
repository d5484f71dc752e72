package tlsterm

import (
	"github.com/gale-server/gale/server"
)

// PlainHTTPMessage is the reason of the 400 a TLS port answers a plain HTTP
// request with (the words nginx uses, which operators search for).
const PlainHTTPMessage = "plain HTTP request was sent to HTTPS port"

// RejectPlain is the handler of plain HTTP requests on a TLS-only port: 400 with
// PlainHTTPMessage, then the connection closes.
var RejectPlain server.Handler = server.HandlerFunc(func(c *server.Ctx) { c.Error(400, PlainHTTPMessage) })

// Listen adds a TLS listening address to srv: connections that start with a TLS
// handshake are terminated by a new Terminator and their requests served by h;
// any other first bytes are served by plain (RejectPlain when nil). d carries
// the rest of the dispatch (Proxy, SniffTimeout); its HTTP1, TLS and Plain are
// set here. HTTP/2 over TLS is opts.H2: a *server.HTTP2 there serves the
// listener's handler (linked with Listener.LinkHTTP2), and h2 is offered with ALPN.
func Listen(srv *server.Server, addr string, h, plain server.Handler, d server.Dispatch, opts Options) (*server.Listener, *Terminator, error) {
	return listen(srv, func(d server.Dispatch) (*server.Listener, error) { return srv.ListenDispatch(addr, d) }, h, plain, d, opts)
}

// ListenFDs is Listen on inherited listening sockets (a worker process's share,
// or a binary upgrade's).
func ListenFDs(srv *server.Server, fds []int, h, plain server.Handler, d server.Dispatch, opts Options) (*server.Listener, *Terminator, error) {
	return listen(srv, func(d server.Dispatch) (*server.Listener, error) { return srv.ListenFDsDispatch(fds, d) }, h, plain, d, opts)
}

func listen(srv *server.Server, on func(server.Dispatch) (*server.Listener, error), h, plain server.Handler, d server.Dispatch, opts Options) (*server.Listener, *Terminator, error) {
	if opts.Engine == nil {
		opts.Engine = srv.Engine()
	}
	t, err := New(opts)
	if err != nil {
		return nil, nil, err
	}
	if plain == nil {
		plain = RejectPlain
	}
	d.HTTP1, d.TLS, d.Plain = h, t, plain
	l, err := on(d)
	if err != nil {
		return nil, nil, err
	}
	if h2, ok := opts.H2.(*server.HTTP2); ok {
		l.LinkHTTP2(h2)
	}
	t.Bind(l)
	return l, t, nil
}
