package pubsub

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/websocket"
)

// maxFrameHeader is the longest header of an unmasked WebSocket frame.
const maxFrameHeader = 10

// Encoding is the form in which a subscriber receives messages.
type Encoding uint8

// Encodings; a message carries one frame for each encoding its topic's subscribers use.
const (
	// EncRaw is a WebSocket frame holding the payload as published (the path mode).
	EncRaw Encoding = iota
	// EncJSON is a WebSocket text frame holding the JSON envelope of the protocol.
	EncJSON
	// EncSSE is a Server-Sent Event.
	EncSSE
	// EncRawZ and EncJSONZ are EncRaw and EncJSON compressed once with
	// permessage-deflate, for connections that negotiated it without server context
	// takeover (wsserver.Conn.CompressesStateless). A message under compressMin bytes,
	// or one that does not shrink, goes in the uncompressed frame.
	EncRawZ
	EncJSONZ
	numEnc
)

// Message is one published message. It is immutable once published and reference
// counted: every loop delivering it and the history ring hold a reference.
type Message struct {
	Topic  string
	Offset uint64
	Epoch  string
	Time   int64            // Unix nanoseconds when it was published
	Op     websocket.Opcode // OpText or OpBinary
	Data   []byte
	Origin string // the instance that published it ("" for this one)

	from   *Sub // the publishing subscription, which does not receive it
	frames [numEnc][]byte
	refs   atomic.Int32
}

// Retain adds a reference.
func (m *Message) Retain() { m.refs.Add(1) }

// Release drops a reference. Dropping more than were taken panics.
func (m *Message) Release() {
	if m.refs.Add(-1) < 0 {
		panic("pubsub: Message released more often than retained")
	}
}

// Frame returns the message's frame in encoding e, or nil when it was not built (no
// subscriber of the topic used e when it was published).
func (m *Message) Frame(e Encoding) []byte { return m.frames[e] }

// isJSON reports whether the data can stand as a JSON value in the envelope.
func isJSON(op websocket.Opcode, data []byte) bool {
	return op == websocket.OpText && json.Valid(data)
}

// appendEnvelope appends the protocol's delivery envelope of m.
func appendEnvelope(b []byte, m *Message) []byte {
	b = append(b, `{"type":"message","topic":`...)
	b = appendJSONString(b, m.Topic)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, m.Offset, 10)
	b = append(b, `,"epoch":"`...)
	b = append(b, m.Epoch...)
	b = append(b, `","data":`...)
	if isJSON(m.Op, m.Data) {
		b = append(b, bytes.TrimSpace(m.Data)...)
	} else {
		b = appendJSONString(b, string(m.Data))
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c >= 0x20 && c != '<' && c != '>' && c != '&':
				b = append(b, c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, `\u202`...)
			b = append(b, hex[r&15])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendSSE appends m as one Server-Sent Event: its id is "epoch-offset" (what a
// reconnecting EventSource sends back as Last-Event-ID) and its data the payload,
// one data line per line (lines end at CRLF, LF or CR).
func appendSSE(b []byte, m *Message) []byte {
	b = append(b, "id: "...)
	b = append(b, m.Epoch...)
	b = append(b, '-')
	b = strconv.AppendUint(b, m.Offset, 10)
	b = append(b, '\n')
	data := m.Data
	for {
		// The event stream ends a line at CRLF, LF or a lone CR alike (HTML, "Parsing
		// an event stream"): a CR left inside a data line would end it there and turn
		// the rest into a field of its own (id:, event:, retry:) on the client.
		i := bytes.IndexAny(data, "\r\n")
		b = append(b, "data: "...)
		if i < 0 {
			b = append(b, data...)
			b = append(b, '\n')
			break
		}
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(b, '\n')
}

// compressMin is the shortest payload compressed for EncRawZ and EncJSONZ.
const compressMin = 64

// compressors lends the compressors of the deflated encodings (publishes run on any
// goroutine).
var compressors = sync.Pool{New: func() any { return websocket.NewCompressor(1) }}

// deflate returns p compressed without context (into dst), or false when it is
// short or does not shrink.
func deflate(dst, p []byte) ([]byte, bool) {
	if len(p) < compressMin {
		return dst, false
	}
	c := compressors.Get().(*websocket.Compressor)
	out, ok := c.Compress(dst[:0], p, false, 0)
	compressors.Put(c)
	return out, ok && len(out) < len(p)
}

// build fills m's frames for the encodings in want, in one allocation; scratch is
// a buffer the caller owns, returned grown.
func (m *Message) build(want [numEnc]bool, scratch []byte) []byte {
	var env, sse, rawZ, envZ []byte
	var rawZok, envZok bool
	size := 0
	if want[EncRaw] {
		size += maxFrameHeader + len(m.Data)
	}
	if want[EncJSON] {
		scratch = appendEnvelope(scratch[:0], m)
		env = scratch
		size += maxFrameHeader + len(env)
	}
	if want[EncSSE] {
		start := len(scratch)
		scratch = appendSSE(scratch, m)
		sse = scratch[start:]
		env = scratch[:start]
		size += len(sse)
	}
	if want[EncRawZ] {
		rawZ, rawZok = deflate(nil, m.Data)
		size += maxFrameHeader + len(rawZ)
	}
	if want[EncJSONZ] {
		if !want[EncJSON] {
			start := len(scratch)
			scratch = appendEnvelope(scratch, m)
			env = scratch[start:]
			size += maxFrameHeader + len(env)
			want[EncJSON] = true
		}
		envZ, envZok = deflate(nil, env)
		size += maxFrameHeader + len(envZ)
	}
	buf := make([]byte, 0, size)
	if want[EncRaw] {
		buf = websocket.AppendFrame(buf, true, m.Op, false, m.Data, nil)
		m.frames[EncRaw] = buf
		m.Data = buf[len(buf)-len(m.Data):]
	}
	if want[EncJSON] {
		start := len(buf)
		buf = websocket.AppendFrame(buf, true, websocket.OpText, false, env, nil)
		m.frames[EncJSON] = buf[start:]
	}
	if want[EncSSE] {
		start := len(buf)
		buf = append(buf, sse...)
		m.frames[EncSSE] = buf[start:]
	}
	m.frames[EncRawZ], m.frames[EncJSONZ] = m.frames[EncRaw], m.frames[EncJSON]
	if rawZok {
		start := len(buf)
		buf = websocket.AppendFrame(buf, true, m.Op, true, rawZ, nil)
		m.frames[EncRawZ] = buf[start:]
	}
	if envZok {
		start := len(buf)
		buf = websocket.AppendFrame(buf, true, websocket.OpText, true, envZ, nil)
		m.frames[EncJSONZ] = buf[start:]
	}
	return scratch
}

// Publish publishes data to t as one message with opcode op (websocket.OpText or
// OpBinary; SSE and the JSON envelope treat both as text). from, when not nil, is
// the publishing subscription, which does not receive it. It returns the message's
// offset. It is safe from any goroutine; subscribers on the calling loop receive it
// from that loop's next drain task, like every other loop's.
func (t *Topic) Publish(op websocket.Opcode, data []byte, from *Sub) uint64 {
	return t.publish(op, data, from, "", nil)
}

// PublishOn is Publish called on loop l (from a handler): the subscribers on l get
// the message before the call returns, without a posted task, in the same order as
// any message already waiting for them. Other loops get it in their inboxes at once
// but are woken at the end of l's iteration (engine.Loop.Defer), one post per loop
// for every message the iteration published, so that a loop takes a burst of
// messages (one read of a publisher's) as one batch instead of waking at the first.
func (t *Topic) PublishOn(l *engine.Loop, op websocket.Opcode, data []byte, from *Sub) uint64 {
	return t.publish(op, data, from, "", l)
}

// publish publishes on loop l, or from any goroutine when l is nil.
func (t *Topic) publish(op websocket.Opcode, data []byte, from *Sub, origin string, l *engine.Loop) uint64 {
	h := t.h
	on := -1
	if l != nil {
		on = l.ID()
	}
	m := &Message{Topic: t.name, Op: op, Data: data, from: from, Origin: origin, Time: time.Now().UnixNano()}
	var want [numEnc]bool
	for e := range want {
		want[e] = t.kinds[e].Load() > 0
	}
	// The raw frame is always built: its buffer holds the one copy of the payload
	// that history and the other encodings read.
	want[EncRaw] = true
	keep := t.hist.size > 0
	t.mu.Lock()
	t.idleSince.Store(m.Time)
	m.Offset = t.next
	t.next++
	m.Epoch = t.epoch
	t.scratch = m.build(want, t.scratch)
	if cap(t.scratch) > 64<<10 {
		t.scratch = nil
	}
	if keep {
		m.refs.Add(1)
		if old := t.hist.push(m); old != nil {
			old.Release()
		}
	}
	local := false
	for i := range t.perLoop {
		if t.perLoop[i].Load() > 0 {
			m.refs.Add(1)
			switch {
			case i == on:
				local = h.loops[i].append(delivery{t: t, m: m})
			case l != nil:
				h.loops[i].enqueueFrom(delivery{t: t, m: m}, &h.loops[on], l)
			default:
				h.loops[i].enqueue(delivery{t: t, m: m})
			}
		}
	}
	t.mu.Unlock()
	if local {
		h.loops[on].drain()
	}
	h.published.Add(1)
	if b := h.opts.Bridge; b != nil && origin == "" {
		b.Publish(t.name, m)
	}
	return m.Offset
}

// Deliver publishes a message that came from another instance (through a Bridge):
// local subscribers receive it, it gets a local offset, and it is not bridged again.
func (h *Hub) Deliver(topic string, op websocket.Opcode, data []byte, origin string) error {
	t := h.Lookup(topic)
	if t == nil {
		return nil // nobody here listens
	}
	if origin == "" {
		origin = "remote"
	}
	t.publish(op, bytes.Clone(data), nil, origin, nil)
	return nil
}
