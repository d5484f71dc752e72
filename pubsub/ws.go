package pubsub

import (
	"errors"

	"github.com/gale-server/gale/websocket"
	"github.com/gale-server/gale/wsserver"
)

// wsClient is one WebSocket connection of a Handler; owned by its loop.
type wsClient struct {
	client
	hd        *Handler
	ws        *wsserver.Conn
	grant     Grant
	topicName string          // PathMode: the path's topic
	one       *Sub            // PathMode: the subscription to it
	subs      map[string]*Sub // ProtocolMode: subscriptions by topic
	scratch   []byte
}

// wsApp is the wsserver.Handler of a Handler's connections.
type wsApp struct{ hd *Handler }

var (
	_ wsserver.Handler        = (*wsApp)(nil)
	_ wsserver.DrainHandler   = (*wsApp)(nil)
	_ wsserver.ClosingHandler = (*wsApp)(nil)
)

// OnOpen implements wsserver.Handler: it takes the client prepared by the handshake
// and, in PathMode, subscribes it to its path's topic.
func (a *wsApp) OnOpen(c *wsserver.Conn) {
	hd := a.hd
	slot := &hd.slots[c.Loop().ID()]
	cl := slot.c
	slot.c = nil
	if cl == nil {
		_ = c.Close(websocket.CloseInternalError, "no pending client")
		return
	}
	cl.ws = c
	cl.lh = hd.h.loopOf(c.Loop())
	if c.Layered() {
		cl.setSink(wsSink{c}) // frames through the TLS layer
	} else {
		cl.ec = c.Engine()
	}
	cl.closeSlow = func() { _ = c.Close(websocket.ClosePolicy, "slow consumer: queue full") }
	c.SetValue(cl)
	cl.endAtExpiry(cl.grant, func() { _ = c.Close(websocket.ClosePolicy, "token expired") })
	if hd.o.Mode == PathMode {
		cl.enc = EncRaw
		if c.CompressesStateless() {
			cl.enc = EncRawZ
		}
		t, err := hd.h.Acquire(cl.topicName)
		if errors.Is(err, ErrTopicLimit) {
			// Filled since the handshake checked (Hub.Admits).
			_ = c.Close(websocket.CloseTryAgainLater, "too many topics")
			return
		}
		if err != nil {
			_ = c.Close(websocket.ClosePolicy, "bad topic")
			return
		}
		cl.one, _ = cl.lh.subscribe(t, &cl.client, nil)
		return
	}
	cl.enc = EncJSON
	if c.CompressesStateless() {
		cl.enc = EncJSONZ
	}
	cl.tellDropped = func(n uint64) {
		cl.scratch = AppendDropped(cl.scratch[:0], n)
		_ = c.SendText(cl.scratch)
	}
}

// OnMessage implements wsserver.Handler.
func (a *wsApp) OnMessage(c *wsserver.Conn, op websocket.Opcode, msg []byte) {
	cl, _ := c.Value().(*wsClient)
	if cl == nil || cl.expired(c.Loop().Now()) {
		return
	}
	if cl.one != nil {
		if cl.grant != nil && !cl.grant.CanPublish(cl.topicName) {
			return // a subscribe-only client's messages are not relayed
		}
		cl.one.t.PublishOn(c.Loop(), op, msg, cl.one)
		return
	}
	if a.hd.o.Mode == ProtocolMode {
		cl.command(msg)
	}
}

// OnDrain implements wsserver.DrainHandler: waiting messages move to the socket.
func (a *wsApp) OnDrain(c *wsserver.Conn) {
	if cl, _ := c.Value().(*wsClient); cl != nil {
		cl.drained()
	}
}

// OnClosing implements wsserver.ClosingHandler: once a close frame is queued (either
// side's) no message may follow it, so nothing more is queued to the client and the
// messages waiting in its backlog are dropped. The subscriptions end at OnClose.
func (a *wsApp) OnClosing(c *wsserver.Conn) {
	if cl, _ := c.Value().(*wsClient); cl != nil {
		cl.closing = true
		cl.clearWait()
	}
}

// OnClose implements wsserver.Handler: every subscription ends.
func (a *wsApp) OnClose(c *wsserver.Conn, _ uint16, _ error) {
	cl, _ := c.Value().(*wsClient)
	if cl == nil {
		return
	}
	c.SetValue(nil)
	cl.closing = true
	cl.forgetExpiry()
	cl.clearWait()
	if cl.one != nil {
		cl.lh.unsubscribe(cl.one)
		cl.one = nil
	}
	for name, s := range cl.subs {
		cl.lh.unsubscribe(s)
		delete(cl.subs, name)
	}
	cl.dropSink()
}

// send writes a reply.
func (cl *wsClient) send(b []byte) {
	cl.scratch = b
	_ = cl.ws.SendText(b)
}

// sendEnvelope sends m in the protocol's delivery envelope (a recovered message).
func (cl *wsClient) sendEnvelope(m *Message) {
	cl.send(appendEnvelope(cl.scratch[:0], m))
}

func (cl *wsClient) fail(cmd *Command, pe *ProtocolError) {
	cl.send(AppendError(cl.scratch[:0], cmd, pe))
}

// acquireError is the protocol error of a failed Hub.Acquire.
func acquireError(err error) *ProtocolError {
	if errors.Is(err, ErrTopicLimit) {
		return &ProtocolError{ErrCodeHubFull, "the hub holds its limit of topics (max_hub_topics); try again later"}
	}
	return &ProtocolError{ErrCodeBadTopic, err.Error()}
}

// command runs one JSON protocol command.
func (cl *wsClient) command(msg []byte) {
	cmd, err := ParseCommand(msg)
	if err != nil {
		cl.fail(cmd, asProtocolError(err))
		return
	}
	h := cl.hd.h
	switch cmd.Type {
	case CmdSubscribe:
		if cl.grant != nil && !cl.grant.CanSubscribe(cmd.Topic) {
			cl.fail(cmd, &ProtocolError{ErrCodeForbidden, "the token does not grant subscribing to this topic"})
			return
		}
		if cl.subs[cmd.Topic] != nil {
			cl.fail(cmd, &ProtocolError{ErrCodeSubscribed, "already subscribed to this topic"})
			return
		}
		if len(cl.subs) >= cl.hd.o.MaxTopics {
			cl.fail(cmd, &ProtocolError{ErrCodeTooMany, "subscription limit reached"})
			return
		}
		t, err := h.Acquire(cmd.Topic)
		if err != nil {
			cl.fail(cmd, acquireError(err))
			return
		}
		var rec *Position
		if cmd.Offset != nil {
			rec = &Position{Epoch: cmd.Epoch, Offset: *cmd.Offset}
		}
		s, j := cl.lh.subscribe(t, &cl.client, rec)
		if cl.subs == nil {
			cl.subs = map[string]*Sub{}
		}
		cl.subs[cmd.Topic] = s
		cl.send(AppendSubscribed(cl.scratch[:0], cmd, &j))
		cl.replayMissed(j.Replay, cl.sendEnvelope)
	case CmdUnsubscribe:
		s := cl.subs[cmd.Topic]
		if s == nil {
			cl.fail(cmd, &ProtocolError{ErrCodeNotSubscribed, "not subscribed to this topic"})
			return
		}
		delete(cl.subs, cmd.Topic)
		cl.lh.unsubscribe(s)
		cl.forget(s.t)
		cl.send(AppendSimple(cl.scratch[:0], "unsubscribed", cmd))
	case CmdPublish:
		if cl.grant != nil && !cl.grant.CanPublish(cmd.Topic) {
			cl.fail(cmd, &ProtocolError{ErrCodeForbidden, "the token does not grant publishing to this topic"})
			return
		}
		t, err := h.Acquire(cmd.Topic)
		if err != nil {
			cl.fail(cmd, acquireError(err))
			return
		}
		data := []byte(cmd.Data)
		op := websocket.OpText
		off := t.PublishOn(cl.ws.Loop(), op, data, nil)
		h.Release(t)
		cl.send(AppendPublished(cl.scratch[:0], cmd, off))
	case CmdPresence:
		if cl.grant != nil && !cl.grant.CanSubscribe(cmd.Topic) {
			cl.fail(cmd, &ProtocolError{ErrCodeForbidden, "the token does not grant subscribing to this topic"})
			return
		}
		cl.send(AppendPresence(cl.scratch[:0], cmd, h.Count(cmd.Topic)))
	}
}
