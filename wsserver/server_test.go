package wsserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
	"github.com/gale-server/gale/websocket"
)

// TestConnSize keeps the per-connection struct within its budget: with the engine's
// 80-byte Conn, an idle WebSocket is two objects of the 80-byte size class.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 80 {
		t.Fatalf("Conn is %d bytes, want at most 80 (a size class)", n)
	}
}

// TestAutobahn12Deflate negotiates permessage-deflate and echoes compressed messages
// of several sizes compressed, in both takeover modes (categories 12 and 13).
func TestAutobahn12Deflate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  websocket.DeflateOptions
		offer string
	}{
		{"no context takeover", websocket.DeflateOptions{}, "permessage-deflate; client_max_window_bits"},
		{"client takeover", websocket.DeflateOptions{ServerNoContextTakeover: true}, "permessage-deflate"},
		{"server window 9", websocket.DeflateOptions{}, "permessage-deflate; server_max_window_bits=9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startWS(t, Echo{}, Options{Compression: true, Deflate: tc.opts})
			c := dial(t, addr, "Sec-WebSocket-Extensions: "+tc.offer)
			if !c.comp {
				t.Fatal("permessage-deflate not negotiated")
			}
			takeover, _ := c.dfl.Send(websocket.RoleClient)
			comp := websocket.NewCompressor(1)
			for _, n := range []int{16, 64, 1000, 5000, 70000, 300000} {
				p := []byte(strings.Repeat("compressible text ", n/18+1)[:n])
				for i := 0; i < 3; i++ {
					z, _ := comp.Compress(nil, p, takeover, 0)
					f := frame(true, websocket.OpText, 4, z)
					c.sendChopped(f, 1500)
					c.expectEcho(websocket.OpText, p)
				}
			}
			// An uncompressed message is fine too.
			c.send(frame(true, websocket.OpBinary, 0, []byte("plain")))
			c.expectEcho(websocket.OpBinary, []byte("plain"))
			// RSV1 on a continuation is a protocol error.
			c.send(frame(false, websocket.OpText, 0, []byte("a")), frame(true, websocket.OpContinuation, 4, []byte("b")))
			c.expectClose(websocket.CloseProtocolError)
		})
	}
}

// TestDeflateBombRefused stops a message that inflates past the limit with 1009.
func TestDeflateBombRefused(t *testing.T) {
	_, addr := startWS(t, Echo{}, Options{Compression: true, MaxMessageBytes: 64 << 10})
	c := dial(t, addr, "Sec-WebSocket-Extensions: permessage-deflate")
	z, _ := websocket.NewCompressor(9).Compress(nil, make([]byte, 10<<20), false, 0)
	c.send(frame(true, websocket.OpBinary, 4, z))
	c.expectClose(websocket.CloseTooBig)
}

// recorder records the callbacks it gets.
type recorder struct {
	mu     sync.Mutex
	opened chan *Conn
	closed chan closeEvent
	parts  [][]byte
	msgs   [][]byte
	onMsg  func(c *Conn, op websocket.Opcode, msg []byte)
}

type closeEvent struct {
	code uint16
	err  error
}

func newRecorder() *recorder {
	return &recorder{opened: make(chan *Conn, 16), closed: make(chan closeEvent, 16)}
}

func (r *recorder) OnOpen(c *Conn) { r.opened <- c }
func (r *recorder) OnMessage(c *Conn, op websocket.Opcode, msg []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, bytes.Clone(msg))
	r.mu.Unlock()
	if r.onMsg != nil {
		r.onMsg(c, op, msg)
	}
}
func (r *recorder) OnClose(c *Conn, code uint16, err error) { r.closed <- closeEvent{code, err} }

func (r *recorder) waitClose(t *testing.T) closeEvent {
	t.Helper()
	select {
	case e := <-r.closed:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose not called")
		return closeEvent{}
	}
}

// partRecorder streams parts.
type partRecorder struct{ *recorder }

func (p partRecorder) OnPart(c *Conn, op websocket.Opcode, part []byte, fin bool) {
	p.mu.Lock()
	p.parts = append(p.parts, bytes.Clone(part))
	p.mu.Unlock()
	if fin {
		_ = c.SendText([]byte("done"))
	}
}

// TestPartHandlerStreams delivers a large message in parts without holding it whole,
// and a small whole frame through OnMessage.
func TestPartHandlerStreams(t *testing.T) {
	r := partRecorder{newRecorder()}
	_, addr := startWS(t, r, Options{MaxMessageBytes: -1})
	c := dial(t, addr)
	p := bytes.Repeat([]byte("x"), 100000)
	f := frame(true, websocket.OpText, 0, p)
	c.send(f[:5000])
	// Wait until the first part has been streamed, so that the rest arrives later.
	waitFor(t, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.parts) > 0 })
	c.send(f[5000:])
	c.expectEcho(websocket.OpText, []byte("done"))
	r.mu.Lock()
	total := 0
	for _, part := range r.parts {
		total += len(part)
	}
	r.mu.Unlock()
	if total != len(p) {
		t.Fatalf("parts carried %d bytes, want %d", total, len(p))
	}
}

// waitFor polls cond until it holds or ten seconds pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestServerClose runs a server-initiated close handshake: OnClose reports the peer's
// code and no error.
func TestServerClose(t *testing.T) {
	r := newRecorder()
	r.onMsg = func(c *Conn, _ websocket.Opcode, msg []byte) {
		if string(msg) == "bye" {
			if err := c.Close(websocket.CloseNormal, "done"); err != nil {
				t.Error(err)
			}
			if err := c.SendText([]byte("late")); !errors.Is(err, ErrClosing) {
				t.Errorf("send after Close: %v, want ErrClosing", err)
			}
		}
	}
	_, addr := startWS(t, r, Options{})
	c := dial(t, addr)
	c.send(frame(true, websocket.OpText, 0, []byte("bye")))
	g, err := c.read()
	if err != nil || g.op != websocket.OpClose || g.code != 1000 || g.reason != "done" {
		t.Fatalf("got %+v %v, want close 1000 done", g, err)
	}
	c.send(frame(true, websocket.OpClose, 0, []byte{0x03, 0xe8}))
	c.expectEOF()
	if e := r.waitClose(t); e.code != 1000 || e.err != nil {
		t.Fatalf("OnClose(%d, %v), want 1000, nil", e.code, e.err)
	}
}

// TestCloseTimeout resets a connection whose peer never answers the server's close.
func TestCloseTimeout(t *testing.T) {
	r := newRecorder()
	r.onMsg = func(c *Conn, _ websocket.Opcode, _ []byte) { _ = c.Close(websocket.CloseNormal, "") }
	ws, addr := startWS(t, r, Options{CloseTimeout: 50 * time.Millisecond})
	c := dial(t, addr)
	c.send(frame(true, websocket.OpText, 0, []byte("x")))
	c.expectClose(websocket.CloseNormal)
	if e := r.waitClose(t); !errors.Is(e.err, ErrCloseTimeout) || e.code != websocket.CloseAbnormal {
		t.Fatalf("OnClose(%d, %v), want 1006, ErrCloseTimeout", e.code, e.err)
	}
	if ws.Stats().CloseTimeouts != 1 {
		t.Fatalf("stats %+v", ws.Stats())
	}
}

// TestKeepAliveAndIdle sends pings to a silent peer and closes it with 1001 once the
// idle timeout has passed; a peer that answers the pings stays.
func TestKeepAliveAndIdle(t *testing.T) {
	r := newRecorder()
	ws, addr := startWS(t, r, Options{PingInterval: 100 * time.Millisecond, IdleTimeout: time.Second})
	alive := dial(t, addr)
	silent := dial(t, addr)
	// The live client answers every ping until the test ends, reporting a close.
	aliveClosed := make(chan bool, 1)
	stop := make(chan struct{})
	go func() {
		for {
			g, err := alive.read()
			select {
			case <-stop:
				aliveClosed <- false
				return
			default:
			}
			if err != nil || g.op == websocket.OpClose {
				aliveClosed <- true
				return
			}
			if g.op == websocket.OpPing {
				alive.c.Write(frame(true, websocket.OpPong, 0, g.payload))
			}
		}
	}()
	pings := 0
	for {
		g, err := silent.read()
		if err != nil {
			t.Fatalf("silent client: %v", err)
		}
		if g.op == websocket.OpPing {
			pings++
			continue
		}
		if g.op != websocket.OpClose || g.code != websocket.CloseGoingAway {
			t.Fatalf("got %+v, want close 1001", g)
		}
		break
	}
	if pings < 2 {
		t.Fatalf("silent client got %d pings before the idle close, want at least 2", pings)
	}
	silent.send(frame(true, websocket.OpClose, 0, []byte{0x03, 0xe9}))
	silent.expectEOF()
	if e := r.waitClose(t); !errors.Is(e.err, ErrIdle) {
		t.Fatalf("OnClose err %v, want ErrIdle", e.err)
	}
	// The live client has been answering pings for longer than the idle timeout.
	close(stop)
	alive.c.SetReadDeadline(time.Now())
	if <-aliveClosed {
		t.Fatal("the client answering pings was closed")
	}
	if ws.Stats().IdleTimeouts != 1 {
		t.Fatalf("stats %+v", ws.Stats())
	}
}

// TestHighWaterPolicy closes a peer that does not read with the configured code and
// counts it.
func TestHighWaterPolicy(t *testing.T) {
	for _, code := range []uint16{websocket.ClosePolicy, websocket.CloseTryAgainLater} {
		r := newRecorder()
		var sendErr error
		r.onMsg = func(c *Conn, _ websocket.Opcode, _ []byte) {
			big := make([]byte, 256<<10)
			for i := 0; i < 100 && sendErr == nil; i++ {
				sendErr = c.SendBinary(big)
			}
		}
		ws, addr := startWS(t, r, Options{HighWater: 1 << 20, OverflowCode: code, CloseTimeout: 100 * time.Millisecond})
		c := dial(t, addr)
		c.send(frame(true, websocket.OpText, 0, []byte("flood me")))
		if e := r.waitClose(t); !errors.Is(e.err, ErrOverflow) {
			// The peer never reads: the close timeout resets it after the close frame.
			t.Fatalf("OnClose err %v, want ErrOverflow", e.err)
		}
		if !errors.Is(sendErr, ErrOverflow) || ws.Stats().Overflows != 1 {
			t.Fatalf("send error %v, stats %+v", sendErr, ws.Stats())
		}
	}
}

// TestHighWaterCloseFrame reads the flood and then finds the policy's close code.
func TestHighWaterCloseFrame(t *testing.T) {
	r := newRecorder()
	r.onMsg = func(c *Conn, _ websocket.Opcode, _ []byte) {
		big := make([]byte, 256<<10)
		for c.SendBinary(big) == nil {
		}
	}
	_, addr := startWS(t, r, Options{HighWater: 512 << 10, OverflowCode: websocket.CloseTryAgainLater, CloseTimeout: 10 * time.Second})
	c := dial(t, addr)
	c.send(frame(true, websocket.OpText, 0, []byte("flood me")))
	c.expectClose(websocket.CloseTryAgainLater)
}

const wsFields = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n"

// TestHandshakeRefusals answers bad handshakes with their status and keeps counting.
func TestHandshakeRefusals(t *testing.T) {
	ws, addr := startWS(t, Echo{}, Options{AllowedOrigins: []string{"https://app.example"}})
	for _, tc := range []struct {
		req    string
		status int
		field  string
	}{
		{"GET / HTTP/1.1\r\nHost: h\r\nOrigin: http://evil.example\r\n" + wsFields + "\r\n", 403, ""},
		{"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 8\r\n\r\n", 426, "Sec-WebSocket-Version: 13"},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n" + wsFields + "\r\n", 405, "Allow: GET"},
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		// A handshake with a body is the client's error (400), not the server's (it was
		// 500: the connection could not be handed over while the body was unread).
		{"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n" + wsFields + "\r\nhello", 400, ""},
		{"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n" + wsFields + "\r\n0\r\n\r\n", 400, ""},
	} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(nc, tc.req)
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatal(err)
		}
		name, value, _ := strings.Cut(tc.field, ": ")
		if resp.StatusCode != tc.status || name != "" && resp.Header.Get(name) != value {
			t.Fatalf("%q: status %d %v, want %d with %q", tc.req, resp.StatusCode, resp.Header, tc.status, tc.field)
		}
		nc.Close()
	}
	c := dial(t, addr, "Origin: https://app.example")
	c.send(frame(true, websocket.OpText, 0, []byte("allowed")))
	c.expectEcho(websocket.OpText, []byte("allowed"))
	if ws.Stats().Refused != 6 {
		t.Fatalf("stats %+v", ws.Stats())
	}
}

// TestSubprotocol selects the server's most preferred subprotocol the client offers.
func TestSubprotocol(t *testing.T) {
	r := newRecorder()
	_, addr := startWS(t, r, Options{Subprotocols: []string{"chat", "superchat"}})
	c := dial(t, addr, "Sec-WebSocket-Protocol: superchat, chat")
	if got := c.resp.Header.Get("Sec-WebSocket-Protocol"); got != "chat" {
		t.Fatalf("Sec-WebSocket-Protocol %q, want chat", got)
	}
	select {
	case wc := <-r.opened:
		// Subprotocol is set before OnOpen and never changes.
		if got := wc.Subprotocol(); got != "chat" {
			t.Fatalf("Subprotocol() = %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnOpen not called")
	}
}

// valuer stores a value per connection and checks it in every callback.
type valuer struct{ *recorder }

func (v valuer) OnOpen(c *Conn) { c.SetValue("v:" + c.RemoteAddr().String()); v.recorder.OnOpen(c) }
func (v valuer) OnMessage(c *Conn, op websocket.Opcode, msg []byte) {
	_ = c.Send(op, []byte(c.Value().(string)))
}
func (v valuer) OnClose(c *Conn, code uint16, err error) {
	if c.Value() != "v:"+c.RemoteAddr().String() {
		err = errors.New("value lost before OnClose")
	}
	v.recorder.OnClose(c, code, err)
}

// TestValue: each connection keeps its own value from OnOpen through OnClose, and Value
// is nil once OnClose has returned.
func TestValue(t *testing.T) {
	r := valuer{newRecorder()}
	_, addr := startWS(t, r, Options{})
	a, b := dial(t, addr), dial(t, addr)
	ca, cb := <-r.opened, <-r.opened
	for _, c := range []*wsClient{a, b} {
		c.send(frame(true, websocket.OpText, 0, []byte("?")))
		op, got := c.message()
		if op != websocket.OpText || !strings.HasPrefix(string(got), "v:127.0.0.1:") {
			t.Fatalf("value %q", got)
		}
	}
	a.send(frame(true, websocket.OpClose, 0, []byte{0x03, 0xe8}))
	if e := r.waitClose(t); e.err != nil {
		t.Fatal(e.err)
	}
	closed, open := ca, cb
	remote := make(chan string, 1)
	ca.Loop().Post(func() { remote <- ca.RemoteAddr().String() }) // a Conn is its loop's
	if <-remote != a.c.LocalAddr().String() {
		closed, open = cb, ca
	}
	done := make(chan [2]any, 1)
	closed.Loop().Post(func() { done <- [2]any{closed.Value(), open.Value()} })
	if v := <-done; v[0] != nil || v[1] == nil {
		t.Fatalf("after one closed: closed value %v, open value %v", v[0], v[1])
	}
}

// closingRecorder is a recorder that is a ClosingHandler: it counts OnClosing calls
// and checks, inside them, that the connection no longer takes messages.
type closingRecorder struct {
	*recorder
	closings chan error // the error of a SendText tried in OnClosing
}

func (r closingRecorder) OnClosing(c *Conn) {
	if c.Open() {
		r.closings <- errors.New("Open() still true in OnClosing")
		return
	}
	r.closings <- c.SendText([]byte("late"))
}

// TestClosingHandler checks that a ClosingHandler hears once, before OnClose, of every
// way a connection stops being open: the server's Close, the peer's close frame, a
// protocol error. In OnClosing the connection already refuses messages (ErrClosing),
// and nothing is sent after the close frame. A peer that goes away without a close
// frame gets OnClose alone.
func TestClosingHandler(t *testing.T) {
	r := closingRecorder{newRecorder(), make(chan error, 16)}
	r.onMsg = func(c *Conn, _ websocket.Opcode, msg []byte) {
		if string(msg) == "close me" {
			_ = c.Close(websocket.CloseNormal, "")
		}
	}
	_, addr := startWS(t, r, Options{})
	oneClosing := func(what string) {
		t.Helper()
		select {
		case err := <-r.closings:
			if !errors.Is(err, ErrClosing) {
				t.Fatalf("%s: SendText in OnClosing: %v, want ErrClosing", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no OnClosing", what)
		}
		if e := r.waitClose(t); e.code == 0 {
			t.Fatalf("%s: OnClose(%d, %v)", what, e.code, e.err)
		}
		select {
		case err := <-r.closings:
			t.Fatalf("%s: a second OnClosing (%v)", what, err)
		default:
		}
	}
	// The server's Close, then the peer's answer.
	c := dial(t, addr)
	c.send(frame(true, websocket.OpText, 0, []byte("close me")))
	c.expectControl(websocket.OpClose, []byte{0x03, 0xe8})
	c.send(frame(true, websocket.OpClose, 0, []byte{0x03, 0xe8}))
	c.expectEOF()
	c.c.Close()
	oneClosing("server's Close")
	// The peer's close frame.
	c = dial(t, addr)
	c.send(frame(true, websocket.OpClose, 0, []byte{0x03, 0xe8}))
	c.expectClose(websocket.CloseNormal)
	c.c.Close()
	oneClosing("peer's close")
	// A protocol error.
	c = dial(t, addr)
	c.send(frame(true, 3, 0, nil))
	c.expectClose(websocket.CloseProtocolError)
	c.c.Close()
	oneClosing("protocol error")
	// The peer goes away: OnClose alone.
	c = dial(t, addr)
	c.c.Close()
	if e := r.waitClose(t); e.code != websocket.CloseAbnormal {
		t.Fatalf("peer gone: OnClose(%d, %v), want 1006", e.code, e.err)
	}
	select {
	case err := <-r.closings:
		t.Fatalf("OnClosing for a peer that went away (%v)", err)
	default:
	}
}

// TestEchoBeforeEOF: a client that sends messages and then half-closes its
// connection (a FIN, no close frame) still gets what the server sent in answer to
// them before the connection ends, on both engines, as uWebSockets does. Before,
// the FIN closed the connection at once with its output discarded, so the echoes
// were lost whenever the FIN came in the same read as the messages.
func TestEchoBeforeEOF(t *testing.T) {
	servertest.OnEngines(t, func(t *testing.T, eng string) {
		ws, err := New(Echo{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		addr := servertest.Start(t, ws, func(o *server.Options) { o.Engine = eng }).Addr()
		msgs := [][]byte{[]byte("one"), bytes.Repeat([]byte("two"), 1000), []byte("three")}
		for i := 0; i < 20; i++ {
			c := dial(t, addr)
			var b []byte
			for _, m := range msgs {
				b = append(b, frame(true, websocket.OpText, 0, m)...)
			}
			c.send(b)
			c.c.(*net.TCPConn).CloseWrite()
			for _, m := range msgs {
				c.expectEcho(websocket.OpText, m)
			}
			c.expectEOF()
			c.c.Close()
		}
	})
}
