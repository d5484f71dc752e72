package wsserver

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/server/servertest"
	"github.com/gale-server/gale/websocket"
)

// startWS serves h with opts at every path on a one-loop server and returns the
// Server and the address.
func startWS(t *testing.T, h Handler, opts Options) (*Server, string) {
	t.Helper()
	ws, err := New(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, ws, nil)
	return ws, srv.Addr()
}

// wsClient is a minimal RFC 6455 client written for the tests: it masks every frame
// with a fresh key and reads the server's frames with the codec's client role.
type wsClient struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	rd   websocket.Reader
	buf  []byte // unconsumed input
	resp *http.Response
	dfl  websocket.DeflateParams
	comp bool
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

// dial connects and completes the opening handshake with extra header lines.
func dial(t *testing.T, addr string, extra ...string) *wsClient {
	t.Helper()
	c, resp := dialRaw(t, addr, extra...)
	if resp.StatusCode != 101 {
		t.Fatalf("handshake: status %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != websocket.AcceptKey([]byte(testKey)) {
		t.Fatalf("Sec-WebSocket-Accept %q", got)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		p, ok, err := websocket.ParseDeflateResponse(websocket.MapHeader(resp.Header))
		if err != nil || !ok {
			t.Fatalf("extension response %q: %v", ext, err)
		}
		c.dfl, c.comp = p, true
		c.rd.Compression = true
	}
	return c
}

// dialRaw sends the handshake and returns the client and the response head.
func dialRaw(t *testing.T, addr string, extra ...string) (*wsClient, *http.Response) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n"
	for _, e := range extra {
		req += e + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &wsClient{t: t, c: nc, br: br, resp: resp}
	c.rd.Role = websocket.RoleClient
	c.rd.MaxMessageBytes = -1
	return c, resp
}

// frame builds a masked client frame with the given header bits.
func frame(fin bool, op websocket.Opcode, rsv byte, payload []byte) []byte {
	var key [4]byte
	rand.Read(key[:])
	// AppendFrame cuts control payloads to 125 bytes; the tests need longer ones too.
	b := websocket.AppendFrameHeader(nil, fin, op, false, len(payload), &key)
	start := len(b)
	b = append(b, payload...)
	websocket.MaskBytes(key, 0, b[start:])
	b[0] |= rsv << 4
	return b
}

// send writes raw bytes.
func (c *wsClient) send(b ...[]byte) {
	c.t.Helper()
	if _, err := c.c.Write(bytes.Join(b, nil)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// sendChopped writes b in pieces of n bytes, each its own write.
func (c *wsClient) sendChopped(b []byte, n int) {
	c.t.Helper()
	for len(b) > 0 {
		k := min(n, len(b))
		c.send(b[:k])
		b = b[k:]
	}
}

// got is one frame received by the client, payload copied.
type got struct {
	fin        bool
	op         websocket.Opcode
	compressed bool
	payload    []byte
	code       uint16
	reason     string
}

// read returns the next frame from the server, or an error (io.EOF when the server
// closed the connection).
func (c *wsClient) read() (got, error) {
	for {
		if len(c.buf) > 0 {
			f, n, err := c.rd.ReadFrame(c.buf)
			if err == nil {
				g := got{fin: f.Fin, op: f.Opcode, compressed: f.Compressed, payload: bytes.Clone(f.Payload),
					code: f.CloseCode, reason: string(f.CloseReason)}
				c.buf = c.buf[n:]
				return g, nil
			}
			if !errors.Is(err, websocket.ErrNeedMore) {
				return got{}, err
			}
		}
		tmp := make([]byte, 64<<10)
		n, err := c.br.Read(tmp)
		c.buf = append(c.buf, tmp[:n]...)
		if err != nil && n == 0 {
			return got{}, err
		}
	}
}

// message reads the next data message, skipping nothing: control frames fail the
// test. Compressed messages are inflated.
func (c *wsClient) message() (websocket.Opcode, []byte) {
	c.t.Helper()
	var op websocket.Opcode
	var data []byte
	compressed := false
	for {
		g, err := c.read()
		if err != nil {
			c.t.Fatalf("reading a message: %v", err)
		}
		if g.op.IsControl() {
			c.t.Fatalf("got control frame %v (code %d %q) while waiting for a message", g.op, g.code, g.reason)
		}
		if g.op != websocket.OpContinuation {
			op, compressed = g.op, g.compressed
		}
		data = append(data, g.payload...)
		if g.fin {
			break
		}
	}
	if compressed {
		d := websocket.NewDecompressor()
		out, err := d.Inflate(nil, data, nil, -1, op == websocket.OpText)
		if err != nil {
			c.t.Fatalf("inflate: %v", err)
		}
		return op, out
	}
	return op, data
}

// expectEcho reads one message and compares it with want.
func (c *wsClient) expectEcho(op websocket.Opcode, want []byte) {
	c.t.Helper()
	gop, data := c.message()
	if gop != op || !bytes.Equal(data, want) {
		c.t.Fatalf("echo: op %v, %d bytes %.40q; want op %v, %d bytes %.40q", gop, len(data), data, op, len(want), want)
	}
}

// expectControl reads the next frame and checks it is op with payload.
func (c *wsClient) expectControl(op websocket.Opcode, payload []byte) {
	c.t.Helper()
	g, err := c.read()
	if err != nil {
		c.t.Fatalf("reading %v: %v", op, err)
	}
	if g.op != op || !bytes.Equal(g.payload, payload) {
		c.t.Fatalf("got %v %q, want %v %q", g.op, g.payload, op, payload)
	}
}

// expectClose reads frames until the server's close frame (data frames may come
// first) and checks its code, then that the server closes the TCP connection.
func (c *wsClient) expectClose(code uint16) {
	c.t.Helper()
	for {
		g, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for close %d: %v", code, err)
		}
		if g.op != websocket.OpClose {
			continue
		}
		if g.code != code {
			c.t.Fatalf("close code %d %q, want %d", g.code, g.reason, code)
		}
		break
	}
	c.expectEOF()
}

// expectEOF checks that the server closes the connection.
func (c *wsClient) expectEOF() {
	c.t.Helper()
	buf := make([]byte, 1024)
	for {
		_, err := c.br.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset") {
			return
		}
		c.t.Fatalf("waiting for the server to close: %v", err)
	}
}
