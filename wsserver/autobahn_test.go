package wsserver

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gale-server/gale/websocket"
)

// The tests in this file follow the case categories of the Autobahn|Testsuite fuzzing
// client, with gale's echo as the server and a Go client over real sockets.

// TestAutobahn1Framing echoes text and binary messages of every length class (7-bit,
// 16-bit and 64-bit lengths), sent whole and chopped into small writes (cases 1.1,
// 1.2).
func TestAutobahn1Framing(t *testing.T) {
	_, addr := startWS(t, Echo{}, Options{})
	c := dial(t, addr)
	for _, n := range []int{0, 1, 125, 126, 127, 128, 4096, 4097, 65535, 65536, 200000} {
		for _, op := range []websocket.Opcode{websocket.OpText, websocket.OpBinary} {
			p := bytes.Repeat([]byte{'*'}, n)
			f := frame(true, op, 0, p)
			if n <= 1000 {
				c.sendChopped(f, 1)
			} else {
				c.sendChopped(f, 997)
			}
			c.expectEcho(op, p)
		}
	}
}

// TestAutobahn2PingPong answers pings with their payload, ignores unsolicited pongs,
// and fails pings over 125 bytes or fragmented (cases 2.1-2.11).
func TestAutobahn2PingPong(t *testing.T) {
	_, addr := startWS(t, Echo{}, Options{})
	c := dial(t, addr)
	c.send(frame(true, websocket.OpPing, 0, nil))
	c.expectControl(websocket.OpPong, nil)
	p125 := bytes.Repeat([]byte{0xfe}, 125)
	c.sendChopped(frame(true, websocket.OpPing, 0, p125), 1)
	c.expectControl(websocket.OpPong, p125)
	c.send(frame(true, websocket.OpPong, 0, []byte("unsolicited")))
	for i := 0; i < 10; i++ {
		c.send(frame(true, websocket.OpPing, 0, []byte{byte(i)}))
	}
	for i := 0; i < 10; i++ {
		c.expectControl(websocket.OpPong, []byte{byte(i)})
	}
	c.send(frame(true, websocket.OpText, 0, []byte("after")))
	c.expectEcho(websocket.OpText, []byte("after"))

	c.send(frame(true, websocket.OpPing, 0, bytes.Repeat([]byte{1}, 126)))
	c.expectClose(websocket.CloseProtocolError)

	c = dial(t, addr)
	c.send(frame(false, websocket.OpPing, 0, []byte("a")), frame(true, websocket.OpContinuation, 0, []byte("b")))
	c.expectClose(websocket.CloseProtocolError)
}

// TestAutobahn3ReservedBits fails a frame with any reserved bit set, after echoing
// what came before it (cases 3.1-3.7).
func TestAutobahn3ReservedBits(t *testing.T) {
	_, addr := startWS(t, Echo{}, Options{})
	for rsv := byte(1); rsv <= 7; rsv++ {
		for _, op := range []websocket.Opcode{websocket.OpText, websocket.OpBinary, websocket.OpPing} {
			c := dial(t, addr)
			c.send(frame(true, websocket.OpText, 0, []byte("hello")), frame(true, op, rsv, []byte("x")),
				frame(true, websocket.OpPing, 0, nil))
			c.expectEcho(websocket.OpText, []byte("hello"))
			c.expectClose(websocket.CloseProtocolError)
		}
	}
}

// TestAutobahn4Opcodes fails reserved opcodes, data and control (cases 4.1, 4.2).
func TestAutobahn4Opcodes(t *testing.T) {
	_, addr := startWS(t, Echo{}, Options{})
	for _, op := range []websocket.Opcode{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		c := dial(t, addr)
		c.send(frame(true, websocket.OpText, 0, []byte("hi")), frame(true, op, 0, []byte("payload")))
		c.expectEcho(websocket.OpText, []byte("hi"))
		c.expectClose(websocket.CloseProtocolError)
	}
}

// TestAutobahn5Fragmentation assembles fragmented messages with control frames
// interleaved, and fails continuations without a message and new messages inside one
// (cases 5.1-5.20).
func TestAutobahn5Fragmentation(t *testing.T) {
	_, addr := startWS(t, Echo{}, Options{})
	c := dial(t, addr)
	c.send(frame(false, websocket.OpText, 0, []byte("frag")), frame(true, websocket.OpContinuation, 0, []byte("ment")))
	c.expectEcho(websocket.OpText, []byte("fragment"))
	// Ping in the middle: the pong comes first, then the whole message.
	c.send(frame(false, websocket.OpBinary, 0, []byte{1, 2}), frame(true, websocket.OpPing, 0, []byte("p")))
	c.expectControl(websocket.OpPong, []byte("p"))
	c.send(frame(false, websocket.OpContinuation, 0, []byte{3}), frame(true, websocket.OpPong, 0, nil),
		frame(true, websocket.OpContinuation, 0, []byte{4}))
	c.expectEcho(websocket.OpBinary, []byte{1, 2, 3, 4})
	// Many one-byte fragments, each byte written alone.
	var all []byte
	want := []byte("0123456789abcdef")
	for i, b := range want {
		op := websocket.OpContinuation
		if i == 0 {
			op = websocket.OpText
		}
		all = append(all, frame(i == len(want)-1, op, 0, []byte{b})...)
	}
	c.sendChopped(all, 1)
	c.expectEcho(websocket.OpText, want)
	// Empty fragments.
	c.send(frame(false, websocket.OpText, 0, nil), frame(false, websocket.OpContinuation, 0, nil),
		frame(true, websocket.OpContinuation, 0, nil))
	c.expectEcho(websocket.OpText, []byte{})

	for name, frames := range map[string][][]byte{
		"continuation first":      {frame(true, websocket.OpContinuation, 0, []byte("x"))},
		"continuation unfinished": {frame(false, websocket.OpContinuation, 0, []byte("x"))},
		"text inside message":     {frame(false, websocket.OpText, 0, []byte("a")), frame(true, websocket.OpText, 0, []byte("b"))},
		"binary inside message":   {frame(false, websocket.OpText, 0, []byte("a")), frame(true, websocket.OpBinary, 0, []byte("b"))},
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, addr)
			c.send(frames...)
			c.expectClose(websocket.CloseProtocolError)
		})
	}
}

// TestAutobahn6UTF8 echoes valid UTF-8 split anywhere, fragments included, and fails
// invalid text with 1007 as soon as the bad byte arrives (cases 6.1-6.23).
func TestAutobahn6UTF8(t *testing.T) {
	_, addr := startWS(t, Echo{}, Options{})
	valid := []byte("κόσμε – Hello-µ@ßöäüàá-UTF-8!! 𝄞 \xef\xbf\xbf")
	c := dial(t, addr)
	for split := 1; split < len(valid); split++ {
		c.send(frame(false, websocket.OpText, 0, valid[:split]), frame(true, websocket.OpContinuation, 0, valid[split:]))
		c.expectEcho(websocket.OpText, valid)
	}
	for _, bad := range []string{"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", "\xc0\xaf", "\xf4\x90\x80\x80", "\xed\xa0\x80", "\xff", "ab\x80"} {
		c := dial(t, addr)
		c.send(frame(true, websocket.OpText, 0, []byte(bad)))
		c.expectClose(websocket.CloseInvalidPayload)
	}
	// Fail fast: only the header and the first bytes of a long text frame are sent;
	// the close arrives without the rest.
	c = dial(t, addr)
	f := frame(true, websocket.OpText, 0, append([]byte("ok\xff"), bytes.Repeat([]byte{'a'}, 5000)...))
	c.send(f[:12])
	c.expectClose(websocket.CloseInvalidPayload)
	// Invalid across fragments.
	c = dial(t, addr)
	c.send(frame(false, websocket.OpText, 0, []byte("\xce")), frame(true, websocket.OpContinuation, 0, []byte("a")))
	c.expectClose(websocket.CloseInvalidPayload)
}

// TestAutobahn7Close echoes valid close codes, answers an empty close with an empty
// one, refuses invalid codes and payloads with 1002 and bad reasons with 1007, and
// ignores data after a close (cases 7.1-7.13).
func TestAutobahn7Close(t *testing.T) {
	_, addr := startWS(t, Echo{}, Options{})
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		c := dial(t, addr)
		c.send(frame(true, websocket.OpClose, 0, []byte{byte(code >> 8), byte(code), 'o', 'k'}),
			frame(true, websocket.OpText, 0, []byte("ignored")))
		c.expectClose(code)
	}
	c := dial(t, addr)
	c.send(frame(true, websocket.OpClose, 0, nil))
	g, err := c.read()
	if err != nil || g.op != websocket.OpClose || len(g.payload) != 0 {
		t.Fatalf("answer to an empty close: %+v %v", g, err)
	}
	c.expectEOF()
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		c := dial(t, addr)
		c.send(frame(true, websocket.OpClose, 0, []byte{byte(code >> 8), byte(code)}))
		c.expectClose(websocket.CloseProtocolError)
	}
	c = dial(t, addr)
	c.send(frame(true, websocket.OpClose, 0, []byte{3}))
	c.expectClose(websocket.CloseProtocolError)
	c = dial(t, addr)
	c.send(frame(true, websocket.OpClose, 0, []byte{3, 0xe8, 0xff, 0xfe}))
	c.expectClose(websocket.CloseInvalidPayload)
}

// TestAutobahn9Limits echoes messages up to the configured limit, whole and
// fragmented, and fails one byte more with 1009 (cases 9.1-9.8, scaled down; the
// 16 MiB cases run in TestHeavyAutobahn9Limits).
func TestAutobahn9Limits(t *testing.T) {
	const limit = 256 << 10
	_, addr := startWS(t, Echo{}, Options{MaxMessageBytes: limit})
	c := dial(t, addr)
	p := []byte(strings.Repeat("abcdefgh", limit/8))
	c.send(frame(true, websocket.OpText, 0, p))
	c.expectEcho(websocket.OpText, p)
	var frags []byte
	for i := 0; i < len(p); i += 1000 {
		op := websocket.OpContinuation
		if i == 0 {
			op = websocket.OpBinary
		}
		frags = append(frags, frame(i+1000 >= len(p), op, 0, p[i:min(i+1000, len(p))])...)
	}
	c.sendChopped(frags, 4093)
	c.expectEcho(websocket.OpBinary, p)
	c.send(frame(true, websocket.OpBinary, 0, append(p, 'x')))
	c.expectClose(websocket.CloseTooBig)
	c = dial(t, addr)
	c.send(frame(false, websocket.OpBinary, 0, p), frame(true, websocket.OpContinuation, 0, []byte("x")))
	c.expectClose(websocket.CloseTooBig)
}
