package pubsub

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/http1"
	"github.com/gale-server/gale/server"
)

// sseHeartbeat is how often an idle SSE stream gets a comment line, so that
// intermediaries and the client see it alive.
const sseHeartbeat = 25 * time.Second

// errSlowSSE closes an SSE subscriber under the close policy.
var errSlowSSE = errors.New("pubsub: slow SSE subscriber: queue full")

// sseClient is one SSE subscriber; owned by its loop.
type sseClient struct {
	client
	sub  *Sub
	rec  *Position // Last-Event-ID, when sent
	g    Grant     // what the client's credentials allow (nil: everything)
	name string
	head []byte // the response head, until OnOpen writes it
}

// sseHandler is the engine.Handler of SSE connections once the HTTP exchange has
// let them go.
type sseHandler struct {
	engine.NopHandler
	hd    *Handler
	slots []*sseClient // index: loop ID; the client being hijacked, owned by that loop
}

var _ engine.Handler = (*sseHandler)(nil)

// parseEventID reads a Last-Event-ID of the form "epoch-offset".
func parseEventID(v string) (*Position, bool) {
	epoch, off, ok := strings.Cut(v, "-")
	if !ok || epoch == "" {
		return nil, false
	}
	n, err := strconv.ParseUint(off, 10, 64)
	if err != nil {
		return nil, false
	}
	return &Position{Epoch: epoch, Offset: n}, true
}

// serveSSE subscribes an HTTP/1.1 request to the topic named by its path (below
// the prefix, and below "sse/" in ProtocolMode). A Last-Event-ID field (or the
// last_event_id query parameter) recovers what was missed.
func (hd *Handler) serveSSE(c *server.Ctx) {
	hd.sseRequest(c, c.Request(), func(cl *sseClient) {
		if c.IsHead() {
			// The head of an event stream, no body and no subscription; the
			// connection stays usable.
			hd.streamSSE(c, cl)
			return
		}
		cl.head = append(c.AppendHeadFields(append(make([]byte, 0, 192), sseStatus...)), sseFields...)
		loop := c.Loop().ID()
		hd.sse.slots[loop] = cl
		err := c.Hijack(hd.sse)
		if err == nil {
			return
		}
		hd.sse.slots[loop] = nil
		cl.head = nil
		if errors.Is(err, server.ErrLayered) {
			// Under TLS the connection cannot be let go: the events are the
			// response's body, written through the layer (chunked).
			hd.streamSSE(c, cl)
			return
		}
		c.Error(500, "cannot stream on this connection: "+err.Error())
	})
}

// sseRequest checks an SSE request (topic, token, Last-Event-ID), answering 404, 400, 401
// or 403 itself, and runs then with the client to serve once it is allowed in.
func (hd *Handler) sseRequest(c server.Exchange, req *http1.Request, then func(cl *sseClient)) {
	skip := ""
	if hd.o.Mode == ProtocolMode {
		skip = "sse/"
	}
	name, ok := hd.topicOf(c, skip, "no topic in the path")
	if !ok {
		return
	}
	hd.authorize(c, req, func(g Grant) {
		if g != nil && !g.CanSubscribe(name) {
			c.Error(403, "the token does not grant this topic")
			return
		}
		if !hd.h.Admits(name) {
			refuseTopicLimit(c)
			return
		}
		cl := &sseClient{name: name, g: g}
		cl.enc = EncSSE
		cl.tellDropped = cl.sendDropped
		id, _ := req.Header("Last-Event-ID")
		if len(id) == 0 {
			for q := range strings.SplitSeq(string(req.Query), "&") {
				if v, ok := strings.CutPrefix(q, "last_event_id="); ok {
					id = []byte(v)
				}
			}
		}
		if len(id) > 0 {
			var ok bool
			if cl.rec, ok = parseEventID(string(id)); !ok {
				c.Error(400, "Last-Event-ID must be epoch-offset as sent in the id field")
				return
			}
		}
		then(cl)
	})
}

// serveSSEStream serves an SSE subscription on an HTTP/2 stream (see streamSSE).
func (hd *Handler) serveSSEStream(x server.Exchange, req *http1.Request) {
	hd.sseRequest(x, req, func(cl *sseClient) { hd.streamSSE(x, cl) })
}

// streamSSE serves an SSE subscription as the body of x's response: on an HTTP/2
// stream (the events are its DATA frames, flow control bounds what is in flight) or
// on an HTTP/1.1 connection under TLS, which cannot be let go (chunked, through the
// layer). The slow-consumer policy bounds what waits; a comment goes out every 25 s
// on an idle stream; the subscription ends when the client resets the stream or
// goes. The close policy resets the stream (RST_STREAM; over HTTP/1.1 the
// connection is closed). At shutdown the response stays until the connection
// closes (the grace period), as any unfinished response does. A HEAD request gets
// the head alone.
func (hd *Handler) streamSSE(x server.Exchange, cl *sseClient) {
	x.Detach()
	h := x.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	x.SetContentLength(-1)
	x.WriteHeader(200)
	if x.IsHead() {
		x.End()
		return
	}
	loop := loopOf(x)
	lh := hd.h.loopOf(loop)
	cl.lh = lh
	cl.setSink(exchangeSink{x})
	var beat *engine.Timer
	end := func() {
		if cl.closing && cl.sub == nil {
			return
		}
		cl.closing = true
		cl.forgetExpiry()
		cl.clearWait()
		if beat != nil {
			beat.Stop()
		}
		if cl.sub != nil {
			lh.unsubscribe(cl.sub)
			cl.sub = nil
		}
		cl.dropSink()
	}
	cl.closeSlow = func() {
		end()
		x.Error(500, "") // after the head: RST_STREAM
	}
	x.OnClose(func(error) { end() })
	if c, ok := x.(interface{ OnPeerEOF(func()) }); ok {
		// A client that closes its side has left: an HTTP/1.1 one, or an HTTP/2
		// one whose connection ends with a TCP FIN and no RST_STREAM or GOAWAY (as
		// a killed curl leaves it). It can read nothing more, so the stream ends
		// now rather than when a heartbeat finds the socket gone.
		c.OnPeerEOF(func() {
			end()
			x.End()
		})
	}
	t, err := hd.h.Acquire(cl.name)
	if err != nil {
		end()
		x.Error(500, "")
		return
	}
	cl.endAtExpiry(cl.g, func() {
		end()
		x.End()
	})
	sub, j := lh.subscribe(t, &cl.client, cl.rec)
	cl.sub = sub
	_, _ = x.Write(sseIntro(nil, &j, cl.rec == nil))
	cl.replayMissed(j.Replay, cl.sendEvent)
	tick := func() {
		if cl.closed() {
			end()
			return
		}
		if cl.expired(loop.Now()) {
			return
		}
		if cl.wait == nil {
			_, _ = x.Write(sseComment)
		}
		beat.Reset(sseHeartbeat)
	}
	beat = loop.AfterFunc(sseHeartbeat, tick)
}

// sseIntro appends what an SSE stream starts with: the recovery outcome (a
// recovery-failed event, or nothing) or ": subscribed". The missed messages follow
// from the client's backlog (client.replayMissed), as the client reads: appended here
// whole, a recovery of the history cost a copy of it per stream, and streams opened
// with an old Last-Event-ID by a client that does not read held that much each.
//
// A fresh stream and a failed recovery also carry the id of the position they start
// from (the last offset before the subscription, in the current epoch): EventSource
// keeps the last id it saw and sends it back as Last-Event-ID when it reconnects, so
// without one a client that reconnects before the next message sent its stale id (or
// none) again and lost what was published meanwhile, although the history held it.
// On a fresh stream the id stands in a block without data, which sets the client's
// last event id without firing an event (HTML, "Dispatch the event").
func sseIntro(b []byte, j *Joined, fresh bool) []byte {
	if j.Failed {
		// A named event the page can listen for; the stream goes on from now.
		b = append(b, "event: recovery-failed\nid: "...)
		b = appendPosition(b, j)
		b = append(b, "\ndata: "...)
		b = appendPosition(b, j)
		b = append(b, "\n\n"...)
	} else if fresh {
		b = append(b, ": subscribed\nid: "...)
		b = appendPosition(b, j)
		b = append(b, "\n\n"...)
	}
	return b
}

// sendEvent writes m as an event (a recovered message): its SSE frame when one was
// built at publish, else one built now in the loop's scratch buffer.
func (cl *sseClient) sendEvent(m *Message) {
	if ev := m.Frame(EncSSE); ev != nil {
		cl.write(ev)
		return
	}
	lh := cl.lh
	lh.scratch = appendSSE(lh.scratch[:0], m)
	cl.write(lh.scratch)
	if cap(lh.scratch) > 64<<10 {
		lh.scratch = nil
	}
}

// sendDropped tells a slow client that the drop_oldest policy dropped n messages
// meant for it: an event named "dropped" with the count as its data, once it has
// caught up (as protocol clients get {"type":"dropped"}). It has no id: the last
// event id stays that of the last message received, from which a reconnection
// recovers what the history still holds.
func (cl *sseClient) sendDropped(n uint64) {
	b := strconv.AppendUint(append(cl.lh.scratch[:0], "event: dropped\ndata: "...), n, 10)
	cl.lh.scratch = append(b, "\n\n"...)
	cl.write(cl.lh.scratch)
}

// write queues p (copied) on the client's connection or sink.
func (cl *sseClient) write(p []byte) {
	if cl.ec == nil {
		cl.sink().write(p)
		return
	}
	_ = cl.ec.Write(p)
}

// appendPosition appends the position a subscription starts from as an event id,
// "epoch-offset" with the last offset published before it.
func appendPosition(b []byte, j *Joined) []byte {
	b = append(b, j.Epoch...)
	b = append(b, '-')
	return strconv.AppendUint(b, j.Next-1, 10)
}

// sseStatus and sseFields surround the server's own fields (Date, Server) in the
// head of an SSE response.
const (
	sseStatus = "HTTP/1.1 200 OK\r\n"
	sseFields = "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n" +
		"X-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
)

// OnOpen implements engine.Handler: the response head, the recovery outcome, the
// missed messages, then live ones.
func (s *sseHandler) OnOpen(ec *engine.Conn) {
	cl := s.slots[ec.Loop().ID()]
	s.slots[ec.Loop().ID()] = nil
	if cl == nil {
		ec.Close(errors.New("pubsub: SSE connection without a request"))
		return
	}
	h := s.hd.h
	cl.ec = ec
	cl.lh = h.loopOf(ec.Loop())
	cl.closeSlow = func() { ec.Close(errSlowSSE) }
	ec.SetContext(cl)
	cl.endAtExpiry(cl.g, func() { ec.CloseAfterFlush(false) })
	_ = ec.Write(cl.head)
	cl.head = nil
	t, err := h.Acquire(cl.name)
	if err != nil {
		ec.Close(err)
		return
	}
	sub, j := cl.lh.subscribe(t, &cl.client, cl.rec)
	cl.sub = sub
	_ = ec.Write(sseIntro(nil, &j, cl.rec == nil))
	cl.replayMissed(j.Replay, cl.sendEvent)
	ec.SetTimeout(sseHeartbeat)
}

// OnData implements engine.Handler: a client sends nothing on an event stream;
// whatever arrives is discarded.
func (s *sseHandler) OnData(_ *engine.Conn, in []byte) int { return len(in) }

// OnEOF implements engine.Handler: the client went away.
func (s *sseHandler) OnEOF(ec *engine.Conn) { ec.Close(nil) }

// OnDrain implements engine.Handler.
func (s *sseHandler) OnDrain(ec *engine.Conn) {
	if cl, _ := ec.Context().(*sseClient); cl != nil {
		cl.drained()
	}
}

var sseComment = []byte(":\n\n")

// OnTimeout implements engine.Handler: the heartbeat.
func (s *sseHandler) OnTimeout(ec *engine.Conn) {
	cl, _ := ec.Context().(*sseClient)
	if cl != nil && cl.expired(ec.Loop().Now()) {
		return
	}
	if cl != nil && cl.wait == nil {
		_ = ec.Write(sseComment)
	}
	ec.SetTimeout(sseHeartbeat)
}

// OnShutdown implements engine.Handler: the stream ends after what is queued.
func (s *sseHandler) OnShutdown(ec *engine.Conn) { ec.CloseAfterFlush(false) }

// OnClose implements engine.Handler: the subscription ends.
func (s *sseHandler) OnClose(ec *engine.Conn, _ error) {
	cl, _ := ec.Context().(*sseClient)
	if cl == nil {
		return
	}
	ec.SetContext(nil)
	cl.closing = true
	cl.forgetExpiry()
	cl.clearWait()
	if cl.sub != nil {
		cl.lh.unsubscribe(cl.sub)
		cl.sub = nil
	}
}
