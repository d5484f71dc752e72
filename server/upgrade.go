package server

import (
	"errors"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
)

// ErrUpgradeBody is returned by Upgrade while the request body is still arriving:
// the bytes after it would be ambiguous (body or new protocol). It is a request-level
// error; the response can still be completed normally.
var ErrUpgradeBody = errors.New("server: Upgrade before the request body was received")

// ErrUpgradeBusy is returned by Upgrade while file bytes of an earlier response still
// wait in the connection's FilePump; retry from OnDrain. A request-level error.
var ErrUpgradeBusy = errors.New("server: Upgrade while earlier output is still being read from a file")

// Upgrade re-parents the connection to h: WebSocket, a tunnel, or any protocol that
// takes over after this request (RFC 9110 §7.8). It must run on the loop, inside
// ServeGale or later from a closure run with Post.
//
// If the response head has not been sent, Upgrade first writes "101 Switching
// Protocols" with the fields of Header (the caller sets Upgrade, Connection and the
// protocol's own fields); a caller that answers otherwise (a 200 to CONNECT) writes
// its head on Conn before calling Upgrade. Then the HTTP/1.1 side lets go: the Ctx
// ends and must not be used again, the HTTP timers are cancelled, h.OnOpen runs (so
// h sets the connection's context and timeouts), and every byte the client sent
// after the request head — pipelined early, or still unread — reaches h.OnData,
// from the first byte on, before any new read. Later events (OnEOF, OnClose …) go
// to h only.
//
// It fails with ErrConnClosed or ErrEnded when there is nothing to upgrade, and with
// ErrUpgradeBody while a request body is still being received, and with
// ErrUpgradeBusy while the file pump still holds earlier output, and with
// ErrLayered on a connection under a protocol layer (TLS) unless h is a
// LayeredHandler: then h.OpenLayered runs instead of OnOpen, h gets the decrypted
// input and writes through the layer.
func (c *Ctx) Upgrade(h engine.Handler) error {
	switch {
	case c.closed || c.ec.Closed():
		return ErrConnClosed
	case c.ended:
		return ErrEnded
	case c.hasBody && !c.bodyDone:
		return ErrUpgradeBody
	case !c.cn.canHandOver(h):
		return ErrLayered
	case c.cn.pumped && c.cn.ls.pumps[c.cn].Pending():
		return ErrUpgradeBusy
	}
	if !c.headSent {
		c.writeSwitching()
	}
	c.letGo(h)
	return nil
}

// letGo hands the connection to h: the HTTP/1.1 side forgets the request, h.OnOpen
// runs and the bytes after the request head go to h.OnData (Upgrade, Hijack).
func (c *Ctx) letGo(h engine.Handler) {
	ec, cn := c.ec, c.cn
	l := cn.lower()
	// The request is over for HTTP: its connection leaves the writing state (the
	// new owner's connections count as waiting, docs/observability.md).
	cn.ls.done.Add(1)
	c.ended = true
	// The HTTP response is over: the request is counted and logged now, with the
	// status sent (101, or what a hijacking handler set with SetStatus: 200 by
	// default), not when the connection closes.
	c.observed()
	cn.upgraded = true
	cn.cur = nil
	if c.detached {
		c.release()
	} else {
		cn.ls.putCtx(c)
	}
	if cn.pumped {
		cn.closePump() // empty: checked above; h writes to the connection itself
	}
	ec.CancelTimeout()
	ec.SetContext(nil)
	// The bytes after the head are the engine's (or the layer's) retained input
	// (OnData returns the head's end once it sees cn.upgraded); resuming
	// re-dispatches them to h at the end of this loop iteration.
	handOver(ec, l, h)
}

// writeSwitching writes the 101 head: Date and Server like every response of the
// server, then the response fields as given, with no framing and no Connection
// rewriting.
func (c *Ctx) writeSwitching() {
	c.headSent = true
	c.status = 101
	ls := c.cn.ls
	b := c.AppendHeadFields(http1.AppendStatusLine(ls.scratch[:0], 1, 101))
	for _, f := range c.hdr.kv {
		if http1.ValidField(f.name, f.value) {
			b = http1.AppendHeader(b, f.name, f.value)
		}
	}
	b = append(b, c.hdr.raw...)
	b = append(b, "\r\n"...)
	c.write(b)
	ls.scratch = b
}
