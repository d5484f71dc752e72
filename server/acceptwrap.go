package server

import "github.com/gale-server/gale/engine"

// AcceptWrap wraps the engine handler of a new listener: the wrapper sees each
// accepted connection first and hands it to h when it is done with it (with
// Conn.SetHandler), such as a reader of the PROXY protocol header that a load
// balancer sends before the client's bytes.
type AcceptWrap func(h engine.Handler) engine.Handler

// SetAcceptWrap makes every listener created afterwards by the Listen methods
// (plain, dispatching, HTTP/2, inherited sockets) accept through wrap; nil turns
// it off. It is meant for the goroutine that sets up listeners, around the Listen
// calls of one configured server, and is not safe concurrently with them.
func (s *Server) SetAcceptWrap(wrap AcceptWrap) { s.wrap = wrap }

// accepting returns the handler a new listener accepts with: h, or h wrapped.
func (s *Server) accepting(h engine.Handler) engine.Handler {
	if s.wrap == nil {
		return h
	}
	return s.wrap(h)
}
