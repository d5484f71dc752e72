package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/http1"
)

// This file runs the codec against a real peer, python3-websockets, over TCP on
// 127.0.0.1: gale's side is a minimal pump (test code only) that does the I/O the server
// integration will do on the loop.

// needPython returns the python3 with the websockets module, or skips.
func needPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import websockets").Run(); err != nil {
		t.Skip("python3-websockets not installed (apt-get install -y python3-websockets)")
	}
	return py
}

// peer is one end of a WebSocket connection driven through the codec.
type peer struct {
	conn        net.Conn
	role        Role
	r           Reader
	compression bool
	params      DeflateParams
	pool        DeflatePool
	comp        *Compressor // held only when this end keeps its context
	window      *Window     // held only when the other end keeps its context
	buf         []byte      // unconsumed input
	inflated    int         // compressed messages received
	deflated    int         // compressed messages sent
}

func newPeer(conn net.Conn, role Role, compression bool, params DeflateParams, buffered []byte) *peer {
	p := &peer{conn: conn, role: role, compression: compression, params: params, buf: buffered}
	p.r = Reader{Role: role, Compression: compression, MaxMessageBytes: 1 << 20}
	if compression {
		if takeover, _ := params.Send(role); takeover {
			p.comp = NewCompressor(0)
		}
		if takeover, _ := params.Receive(role); takeover {
			p.window = &Window{}
		}
	}
	return p
}

// readFrame returns the next frame, its payload copied out of the input buffer. The
// server side reads with ReadPart, the client side with ReadFrame.
func (p *peer) readFrame() (Frame, error) {
	var joined []byte
	for {
		read := p.r.ReadFrame
		if p.role == RoleServer {
			read = p.r.ReadPart
		}
		f, n, err := read(p.buf)
		if err == nil {
			joined = append(joined, f.Payload...)
			p.buf = p.buf[n:]
			if !f.More {
				f.Payload = joined
				return f, nil
			}
			if len(p.buf) > 0 {
				continue
			}
		} else if !errors.Is(err, ErrNeedMore) {
			return f, err
		}
		tmp := make([]byte, 32<<10)
		p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		m, rerr := p.conn.Read(tmp)
		if m == 0 && rerr != nil {
			return f, rerr
		}
		p.buf = newBuf(p.buf, tmp[:m])
	}
}

// readMessage returns the next data message, answering pings on the way; a close frame
// is returned as OpClose with its payload.
func (p *peer) readMessage() (Opcode, []byte, error) {
	var msg []byte
	var op Opcode
	var compressed bool
	for {
		f, err := p.readFrame()
		if err != nil {
			return 0, nil, err
		}
		switch f.Opcode {
		case OpPing:
			if err := p.write(AppendFrame(nil, true, OpPong, false, f.Payload, p.mask())); err != nil {
				return 0, nil, err
			}
			continue
		case OpPong:
			continue
		case OpClose:
			return OpClose, f.Payload, nil
		case OpText, OpBinary:
			op, compressed = f.Opcode, f.Compressed
		}
		msg = append(msg, f.Payload...)
		if !f.Fin {
			continue
		}
		if compressed {
			d := p.pool.GetDecompressor()
			defer p.pool.PutDecompressor(d)
			p.inflated++
			msg, err = d.Inflate(nil, msg, p.window, p.r.MessageLimit(), op == OpText)
		}
		return op, msg, err
	}
}

func (p *peer) mask() *[4]byte {
	if p.role == RoleServer {
		return nil
	}
	var k [4]byte
	for i := range k {
		k[i] = byte(rand.Uint32())
	}
	return &k
}

func (p *peer) write(b []byte) error {
	p.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	_, err := p.conn.Write(b)
	return err
}

// writeMessage sends a message, compressed when negotiated and allowed, in two frames
// when it is over 1000 bytes.
func (p *peer) writeMessage(op Opcode, payload []byte) error {
	data, rsv1 := payload, false
	if p.compression {
		takeover, bits := p.params.Send(p.role)
		c := p.comp
		if !takeover {
			c = p.pool.GetCompressor()
			defer p.pool.PutCompressor(c)
		}
		if out, ok := c.Compress(nil, payload, takeover, bits); ok {
			data, rsv1 = out, true
			p.deflated++
		}
	}
	if len(payload) <= 1000 {
		return p.write(AppendFrame(nil, true, op, rsv1, data, p.mask()))
	}
	k := len(data) / 2
	out := AppendFrame(nil, false, op, rsv1, data[:k], p.mask())
	return p.write(AppendFrame(out, true, OpContinuation, false, data[k:], p.mask()))
}

// serveEcho accepts one connection on ln, answers its handshake with opt and echoes
// messages until the client closes; it returns the server peer and the close payload.
func serveEcho(ln net.Listener, opt *HandshakeOptions) (*peer, []byte, error) {
	conn, err := ln.Accept()
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	var hp http1.Parser
	req := &http1.Request{}
	var buf []byte
	for {
		req.Reset()
		n, err := hp.ParseHead(buf, req)
		if err == nil {
			a, err := Handshake(FromHTTP1(req), opt)
			if err != nil {
				return nil, nil, err
			}
			if _, err := conn.Write(a.AppendResponse(nil)); err != nil {
				return nil, nil, err
			}
			p := newPeer(conn, RoleServer, a.Compression, a.Deflate, append([]byte(nil), buf[n:]...))
			return echo(p)
		}
		if !errors.Is(err, http1.ErrNeedMore) {
			return nil, nil, err
		}
		tmp := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		m, err := conn.Read(tmp)
		if m == 0 {
			return nil, nil, err
		}
		buf = append(buf, tmp[:m]...)
	}
}

func echo(p *peer) (*peer, []byte, error) {
	for {
		op, msg, err := p.readMessage()
		if err != nil {
			return p, nil, err
		}
		if op == OpClose {
			reason := ""
			if len(msg) > 2 {
				reason = string(msg[2:])
			}
			return p, msg, p.write(AppendClose(nil, binary16(msg), reason, nil))
		}
		if err := p.writeMessage(op, msg); err != nil {
			return p, nil, err
		}
	}
}

func binary16(b []byte) uint16 {
	if len(b) < 2 {
		return 0
	}
	return uint16(b[0])<<8 | uint16(b[1])
}

// TestInteropPythonClient runs python3-websockets' client against a gale-codec echo
// server with compression in both directions, with and without context takeover and
// with small windows.
func TestInteropPythonClient(t *testing.T) {
	py := needPython(t)
	cases := []struct {
		name    string
		server  DeflateOptions
		client  string
		wantExt string
	}{
		{"context takeover both ways", DeflateOptions{}, `{"client_max_window_bits": true}`, "permessage-deflate"},
		{"server asks no context takeover", DefaultDeflateOptions(), `{}`,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"client asks no context takeover", DeflateOptions{}, `{"server_no_context_takeover": true, "client_no_context_takeover": true}`,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"small windows", DeflateOptions{ClientMaxWindowBits: 9}, `{"server_max_window_bits": 10, "client_max_window_bits": 12}`,
			"permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			type result struct {
				p     *peer
				close []byte
				err   error
			}
			done := make(chan result, 1)
			go func() {
				p, cl, err := serveEcho(ln, &HandshakeOptions{Deflate: &c.server})
				done <- result{p, cl, err}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, py, "testdata/interop/echo_client.py", "ws://"+ln.Addr().String()+"/", c.client).CombinedOutput()
			if err != nil {
				t.Fatalf("client: %v\n%s", err, out)
			}
			ln.Close()
			res := <-done
			if res.err != nil {
				t.Fatalf("server: %v\nclient said:\n%s", res.err, out)
			}
			if !strings.Contains(string(out), "EXT "+c.wantExt+"\n") || !strings.Contains(string(out), "CLOSE 1000 done") {
				t.Fatalf("client said:\n%s", out)
			}
			if binary16(res.close) != 1000 || string(res.close[2:]) != "done" {
				t.Fatalf("close payload %q", res.close)
			}
			if res.p.inflated == 0 || res.p.deflated == 0 {
				t.Fatalf("inflated %d and deflated %d messages", res.p.inflated, res.p.deflated)
			}
		})
	}
}

// TestInteropPythonServer runs a gale-codec client (RoleClient: masked frames, client
// side of the negotiation) against python3-websockets' echo server.
func TestInteropPythonServer(t *testing.T) {
	py := needPython(t)
	for _, params := range []string{`{}`, `{"server_no_context_takeover": true, "client_no_context_takeover": true}`,
		`{"server_max_window_bits": 11, "client_max_window_bits": 10}`} {
		t.Run(params, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, "testdata/interop/echo_server.py", params)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer cancel()
			lines := bufio.NewScanner(stdout)
			if !lines.Scan() || !strings.HasPrefix(lines.Text(), "PORT ") {
				t.Fatalf("server said %q %s", lines.Text(), stderr.String())
			}
			addr := "127.0.0.1:" + strings.TrimPrefix(lines.Text(), "PORT ")
			p := dialPeer(t, addr)
			defer p.conn.Close()
			msgs := [][]byte{[]byte("Hello"), []byte("Hello"), bytes.Repeat([]byte("compressible "), 8000), []byte(""), []byte("\u20ac"), bytes.Repeat([]byte{1, 2, 3}, 700)}
			for i, m := range msgs {
				op := OpText
				if i%2 == 1 {
					op = OpBinary
				}
				if err := p.writeMessage(op, m); err != nil {
					t.Fatal(err)
				}
				gotOp, got, err := p.readMessage()
				if err != nil || gotOp != op || !bytes.Equal(got, m) {
					t.Fatalf("message %d: op %d, %d bytes, %v", i, gotOp, len(got), err)
				}
			}
			if err := p.write(AppendClose(nil, CloseNormal, "bye", p.mask())); err != nil {
				t.Fatal(err)
			}
			op, payload, err := p.readMessage()
			if err != nil || op != OpClose || binary16(payload) != CloseNormal {
				t.Fatalf("close reply %d %q %v", op, payload, err)
			}
			p.conn.Close() // the close handshake is over: the server waits for the TCP close
			if !lines.Scan() || lines.Text() != "CLOSE 1000 bye" {
				t.Fatalf("server said %q %s", lines.Text(), stderr.String())
			}
			if p.inflated == 0 || p.deflated == 0 {
				t.Fatalf("inflated %d and deflated %d messages", p.inflated, p.deflated)
			}
		})
	}
}

// dialPeer opens a client connection offering permessage-deflate and checks the 101.
func dialPeer(t *testing.T, addr string) *peer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n", addr, key)
	var head []byte
	tmp := make([]byte, 4096)
	for !bytes.Contains(head, []byte("\r\n\r\n")) {
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := conn.Read(tmp)
		if n == 0 {
			t.Fatalf("reading the response: %v", err)
		}
		head = append(head, tmp[:n]...)
	}
	end := bytes.Index(head, []byte("\r\n\r\n"))
	lines := strings.Split(string(head[:end]), "\r\n")
	if !strings.HasPrefix(lines[0], "HTTP/1.1 101 ") {
		t.Fatalf("status %q", lines[0])
	}
	var f Fields
	for _, l := range lines[1:] {
		name, val, _ := strings.Cut(l, ":")
		f = append(f, Field{[]byte(name), []byte(strings.TrimSpace(val))})
	}
	if acc, _ := f.Field("Sec-WebSocket-Accept", 0); string(acc) != AcceptKey([]byte(key)) {
		t.Fatalf("accept %q", acc)
	}
	params, ok, err := ParseDeflateResponse(f)
	if !ok || err != nil {
		t.Fatalf("extensions: %v %v in %q", ok, err, head)
	}
	return newPeer(conn, RoleClient, true, params, append([]byte(nil), head[end+4:]...))
}

// TestInteropNodeClient runs node's WebSocket (undici, the WHATWG client) against a
// gale-codec echo server, with and without context takeover.
func TestInteropNodeClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil || exec.Command(node, "--experimental-websocket", "-e", "if (typeof WebSocket !== 'function') process.exit(1)").Run() != nil {
		t.Skip("node with WebSocket not available")
	}
	for _, opt := range []DeflateOptions{DefaultDeflateOptions(), {}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		var srv *peer
		go func() {
			p, cl, err := serveEcho(ln, &HandshakeOptions{Deflate: &opt})
			if err == nil && (binary16(cl) != 1000 || string(cl[2:]) != "done") {
				err = fmt.Errorf("close payload %q", cl)
			}
			srv = p
			done <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, node, "--experimental-websocket", "testdata/interop/echo_client.js", "ws://"+ln.Addr().String()+"/").CombinedOutput()
		cancel()
		ln.Close()
		if err != nil {
			t.Fatalf("%+v: node: %v\n%s", opt, err, out)
		}
		if err := <-done; err != nil {
			t.Fatalf("%+v: server: %v\nnode said:\n%s", opt, err, out)
		}
		if !strings.Contains(string(out), "EXT permessage-deflate") || !strings.Contains(string(out), "CLOSE 1000 done true") {
			t.Fatalf("%+v: node said:\n%s", opt, out)
		}
		// undici inflates what it receives but sends its own messages uncompressed.
		if srv.deflated == 0 {
			t.Fatalf("%+v: no message deflated", opt)
		}
	}
}
