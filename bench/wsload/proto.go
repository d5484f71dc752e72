package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/gale-server/gale/bench/internal/wsproto"
)

// fanoutProto is what fan-out clients say on top of WebSocket: how a connection joins the
// topic, what the publisher sends, and how a subscriber finds the deliveries in what it
// receives. Each subscriber's delivery decoding runs on that subscriber's goroutine.
type fanoutProto interface {
	// join makes c a subscriber (sub) or the publisher (!sub) after the handshake.
	join(c *conn, sub bool) error
	// publish sends message seq stamped with now on the publisher's connection.
	publish(c *conn, seq uint64, now time.Time) error
	// deliveries calls fn for every delivery in the data message msg received on c and
	// returns the number of parts of msg that were neither deliveries nor control traffic
	// the protocol expects (protocol errors).
	deliveries(c *conn, msg []byte, fn func(seq uint64, sent time.Time, size int)) int
}

// newProto returns the fan-out protocol named by -proto.
func newProto(o options) (fanoutProto, error) {
	switch o.proto {
	case "raw":
		return &rawProto{p: message(o.size, 0, time.Now())}, nil
	case "centrifugo":
		if o.size < centrifugoMin {
			return nil, fmt.Errorf("-proto centrifugo needs -size of at least %d", centrifugoMin)
		}
		return newCentrifugo(o.channel, o.size), nil
	}
	return nil, fmt.Errorf("unknown -proto %q (raw or centrifugo)", o.proto)
}

// rawProto is the path-mode hub: the URL is the topic, a binary message sent is the message
// every other client gets, starting with its sequence number and send time.
type rawProto struct {
	p []byte // the publisher's message, owned by the publishing goroutine
}

func (*rawProto) join(*conn, bool) error { return nil }

func (r *rawProto) publish(c *conn, seq uint64, now time.Time) error {
	stamp(r.p, seq, now)
	return c.send(r.p)
}

func (*rawProto) deliveries(_ *conn, msg []byte, fn func(uint64, time.Time, int)) int {
	if len(msg) < header {
		return 0
	}
	fn(binary.BigEndian.Uint64(msg), time.Unix(0, int64(binary.BigEndian.Uint64(msg[8:]))), len(msg))
	return 0
}

// centrifugoMin is the least -size of a Centrifugo message: the JSON string's quotes and
// 32 hex digits of sequence number and send time.
const centrifugoMin = 2 + 32

// centrifugoProto speaks Centrifugo's JSON client protocol (v2): a connect command, then a
// subscribe command for the channel on every subscriber; the publisher connects and sends
// publish commands (the channel must allow client-side publishing). The publication data is
// a JSON string of exactly -size bytes, quotes included: 16 hex digits of sequence number,
// 16 of send time in Unix nanoseconds, then padding. A server may put several replies and
// pushes in one WebSocket message, one JSON object a line; an empty object is its ping,
// answered with an empty object.
type centrifugoProto struct {
	channel string
	size    int
	cmd     []byte // the publisher's command, owned by the publishing goroutine
	dataAt  int    // offset of the data string's first digit in cmd
}

func newCentrifugo(channel string, size int) *centrifugoProto {
	c := &centrifugoProto{channel: channel, size: size}
	c.cmd = fmt.Appendf(nil, `{"id":0,"publish":{"channel":%s,"data":"`, strconv.Quote(channel))
	c.dataAt = len(c.cmd)
	for i := 0; i < size-2; i++ {
		c.cmd = append(c.cmd, 'a'+byte(i%26))
	}
	c.cmd = append(c.cmd, `"}}`...)
	return c
}

// command sends one JSON command and reads until the reply with its id, which must not
// be an error.
func (p *centrifugoProto) command(c *conn, id int, body string) error {
	if err := c.sendText(fmt.Appendf(nil, `{"id":%d,%s}`, id, body)); err != nil {
		return err
	}
	want := fmt.Appendf(nil, `{"id":%d,`, id)
	for {
		msg, err := c.recv()
		if err != nil {
			return err
		}
		for line := range bytes.SplitSeq(msg, []byte{'\n'}) {
			if !bytes.HasPrefix(line, want) {
				continue
			}
			if bytes.Contains(line, []byte(`"error":`)) {
				return fmt.Errorf("centrifugo refused %s: %s", body, line)
			}
			return nil
		}
	}
}

func (p *centrifugoProto) join(c *conn, sub bool) error {
	if err := p.command(c, 1, `"connect":{}`); err != nil {
		return err
	}
	if !sub {
		return nil
	}
	return p.command(c, 2, fmt.Sprintf(`"subscribe":{"channel":%s}`, strconv.Quote(p.channel)))
}

func (p *centrifugoProto) publish(c *conn, seq uint64, now time.Time) error {
	// The command id cycles through 1..9 so the command keeps its length; replies are
	// read and ignored by the publisher's reader.
	p.cmd[6] = '1' + byte(seq%9)
	putHex(p.cmd[p.dataAt:], seq)
	putHex(p.cmd[p.dataAt+16:], uint64(now.UnixNano()))
	return c.sendText(p.cmd)
}

var pushData = []byte(`"pub":{"data":"`)

func (p *centrifugoProto) deliveries(c *conn, msg []byte, fn func(uint64, time.Time, int)) int {
	bad := 0
	for line := range bytes.SplitSeq(msg, []byte{'\n'}) {
		switch {
		case len(line) == 0:
		case string(line) == "{}":
			// A frame of its own: the publisher's reader answers while it publishes (a
			// net.Conn takes concurrent writes whole).
			if _, err := c.c.Write(wsproto.AppendFrame(nil, wsproto.OpText, line, true)); err != nil {
				bad++
			}
		case bytes.HasPrefix(line, []byte(`{"push":`)):
			i := bytes.Index(line, pushData)
			if i < 0 {
				continue // a push other than a publication (join, leave, ...)
			}
			d := line[i+len(pushData):]
			seq, ok1 := getHex(d)
			sent, ok2 := getHex(d[min(16, len(d)):])
			if !ok1 || !ok2 {
				bad++
				continue
			}
			fn(seq, time.Unix(0, int64(sent)), p.size)
		default:
			bad++ // a reply nobody waits for: only errors get here on a subscriber
		}
	}
	return bad
}

const hexDigits = "0123456789abcdef"

// putHex writes v as 16 lower-case hex digits into b.
func putHex(b []byte, v uint64) {
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[v&15]
		v >>= 4
	}
}

// getHex reads 16 hex digits from the start of b.
func getHex(b []byte) (uint64, bool) {
	if len(b) < 16 {
		return 0, false
	}
	var v uint64
	for _, ch := range b[:16] {
		switch {
		case ch >= '0' && ch <= '9':
			v = v<<4 | uint64(ch-'0')
		case ch >= 'a' && ch <= 'f':
			v = v<<4 | uint64(ch-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// sendText sends one text message; like send, only from the goroutine owning w.out.
func (w *conn) sendText(payload []byte) error {
	w.out = wsproto.AppendFrame(w.out[:0], wsproto.OpText, payload, true)
	_, err := w.c.Write(w.out)
	return err
}
