package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// wsAccept computes Sec-WebSocket-Accept (RFC 6455 §4.2.2).
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsWrite writes one final frame; masked for a client.
func wsWrite(w io.Writer, op byte, p []byte, mask bool) error {
	b := []byte{0x80 | op}
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch {
	case len(p) < 126:
		b = append(b, m|byte(len(p)))
	case len(p) < 1<<16:
		b = append(b, m|126, byte(len(p)>>8), byte(len(p)))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	data := p
	if mask {
		key := [4]byte{1, 2, 3, 4}
		b = append(b, key[:]...)
		data = make([]byte, len(p))
		for i := range p {
			data[i] = p[i] ^ key[i%4]
		}
	}
	_, err := w.Write(append(b, data...))
	return err
}

// wsRead reads one frame and unmasks it.
func wsRead(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		io.ReadFull(r, e[:])
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		io.ReadFull(r, e[:])
		n = binary.BigEndian.Uint64(e[:])
	}
	var key [4]byte
	if h[1]&0x80 != 0 {
		io.ReadFull(r, key[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	return h[0] & 0x0f, p, nil
}

// wsEchoOrigin is a WebSocket echo server on net/http (Hijack and raw frames), which
// also sends a greeting right after its 101 so that bytes behind the head are tested.
func wsEchoOrigin(t *testing.T) *origin {
	return newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want websocket", http.StatusBadRequest)
			return
		}
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		wsWrite(brw, 1, []byte("hello"), false)
		brw.Flush()
		for {
			op, p, err := wsRead(brw.Reader)
			if err != nil || op == 8 {
				wsWrite(c, 8, nil, false)
				return
			}
			if err := wsWrite(c, op, p, false); err != nil {
				return
			}
		}
	}))
}

func TestProxyWebSocketTunnel(t *testing.T) {
	o := wsEchoOrigin(t)
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr := startProxy(t, u, Route{}, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", key)
	// A frame sent right behind the request head must reach the origin too.
	wsWrite(c, 1, []byte("early"), true)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{"hello", "early"} {
		if _, p, err := wsRead(br); err != nil || string(p) != want {
			t.Fatalf("got %q %v, want %q", p, err, want)
		}
	}
	// Large messages both ways, byte for byte.
	for _, size := range []int{1, 125, 126, 65535, 65536, 3 << 20} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		go wsWrite(c, 2, msg, true)
		op, p, err := wsRead(br)
		if err != nil || op != 2 || !bytes.Equal(p, msg) {
			t.Fatalf("size %d: op %d len %d err %v", size, op, len(p), err)
		}
	}
	wsWrite(c, 8, nil, true)
	if op, _, err := wsRead(br); err != nil || op != 8 {
		t.Fatalf("close: op %d err %v", op, err)
	}
	// The origin closed: the proxy closes the client side too.
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the tunnel stayed open after the origin closed")
	}
}

func TestProxyUpgradeNotWebSocket(t *testing.T) {
	// An Upgrade other than websocket (h2c here) is not forwarded: the origin sees a
	// plain request and a 101 from it would be refused.
	o := echoHeadOrigin(t)
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	addr := startProxy(t, u, Route{}, nil)
	got := roundTrip(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n")
	if !strings.HasPrefix(got, "200\n") || strings.Contains(got, "Upgrade") || strings.Contains(got, "h2c") {
		t.Fatalf("%s", got)
	}
	bad := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		if _, err := readRequestHead(br, log); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
	})
	u2 := testUpstream(t, []netip.AddrPort{bad.addr()}, nil)
	addr2 := startProxy(t, u2, Route{}, nil)
	if got := roundTrip(t, addr2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, "502\n") {
		t.Fatalf("unrequested 101: %q, want 502", got)
	}
}

func TestProxyUpgradeWrongProtocol(t *testing.T) {
	// An origin that answers a WebSocket upgrade by switching to another protocol, or
	// without naming one, would leave the client speaking WebSocket to something else:
	// that 101 is a 502, as Go's ReverseProxy (and so Caddy) answer it. Switching to
	// websocket in another case is a tunnel.
	for name, c := range map[string]struct{ head, want string }{
		"h2c":        {"Upgrade: h2c\r\nConnection: Upgrade", "502\n"},
		"no upgrade": {"Connection: Upgrade", "502\n"},
		"two":        {"Upgrade: foo\r\nUpgrade: bar\r\nConnection: Upgrade", "502\n"},
		"WebSocket":  {"Upgrade: WebSocket\r\nConnection: Upgrade", "101\n"},
	} {
		t.Run(name, func(t *testing.T) {
			o := newRawOrigin(t, func(conn net.Conn, br *bufio.Reader, log func([]byte)) {
				if _, err := readRequestHead(br, log); err == nil {
					io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\n"+c.head+"\r\n\r\n\x81\x02hi")
				}
			})
			addr := startProxy(t, testUpstream(t, []netip.AddrPort{o.addr()}, nil), Route{}, nil)
			req := "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n\r\n"
			if got := roundTrip(t, addr, req); !strings.HasPrefix(got, c.want) {
				t.Fatalf("101 with %q: %q, want %q", c.head, got, c.want)
			}
		})
	}
}
