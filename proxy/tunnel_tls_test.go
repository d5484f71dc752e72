package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/internal/testkit"
	"github.com/gale-server/gale/tlsterm"
)

// pyWSSOrigin is a python3-websockets (Debian's python3-websockets) echo server
// over TLS with certificate files cert and key: it greets each connection with
// "hello", echoes every message and answers 403 to the path /refuse without
// upgrading. It returns the address it listens on.
func pyWSSOrigin(t *testing.T, cert, key string) netip.AddrPort {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import websockets").Run(); err != nil {
		t.Skip("python3-websockets not installed (apt-get install -y python3-websockets)")
	}
	script := filepath.Join(t.TempDir(), "wss.py")
	os.WriteFile(script, []byte(`
import asyncio, http, ssl, sys, websockets
async def echo(ws, path):
    await ws.send("hello")
    async for m in ws:
        await ws.send(m)
async def refuse(path, headers):
    if path == "/refuse":
        return http.HTTPStatus.FORBIDDEN, [], b"refused\n"
async def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    async with websockets.serve(echo, "127.0.0.1", 0, ssl=ctx, max_size=2**23, process_request=refuse) as s:
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
`), 0o644)
	cmd := exec.Command(py, script, cert, key)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		port <- strings.TrimSpace(line)
	}()
	select {
	case p := <-port:
		a, err := netip.ParseAddrPort("127.0.0.1:" + p)
		if err != nil {
			t.Fatalf("python3-websockets origin printed %q", p)
		}
		return a
	case <-time.After(20 * time.Second):
		t.Fatal("python3-websockets origin did not start")
	}
	return netip.AddrPort{}
}

// wsUpgrade sends a WebSocket upgrade for path to the proxy at addr and returns
// the connection, its reader and the response head.
func wsUpgrade(t *testing.T, addr, path string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: origin.gale.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", path, key)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == 101 && resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("101 with accept %q, want %q", resp.Header.Get("Sec-WebSocket-Accept"), wsAccept(key))
	}
	return c, br, resp
}

// TestProxyWebSocketTLSOrigin: a WebSocket upgrade to an https:// upstream (a
// python3-websockets server over TLS, verified by name) is tunnelled through the
// upstream's TLS layer: the greeting sent right behind the 101, messages up to
// 3 MiB echoed byte for byte, the close handshake; an origin that answers 403,
// one whose certificate is not trusted and one that refuses the connect are
// answered without a tunnel (403, 502, 502).
func TestProxyWebSocketTLSOrigin(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.NewCA(dir)
	srv, _ := ca.Issue("origin", "origin.gale.test")
	oaddr := pyWSSOrigin(t, srv.Cert, srv.Key)
	u := testUpstream(t, []netip.AddrPort{oaddr}, func(o *UpstreamOptions) {
		o.TLS = clientTLS(t, tlsterm.ClientFiles{CA: ca.CAFile, ServerName: "origin.gale.test"})
	})
	addr := startProxy(t, u, Route{}, nil)

	c, br, resp := wsUpgrade(t, addr, "/ws")
	if resp.StatusCode != 101 || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("upgrade: %d %v", resp.StatusCode, resp.Header)
	}
	if op, p, err := wsRead(br); err != nil || op != 1 || string(p) != "hello" {
		t.Fatalf("greeting: op %d %q %v", op, p, err)
	}
	for _, size := range []int{1, 125, 126, 16 << 10, 65536, 3 << 20} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i*7 + size)
		}
		go wsWrite(c, 2, msg, true)
		op, p, err := wsRead(br)
		if err != nil || op != 2 || !bytes.Equal(p, msg) {
			t.Fatalf("size %d: op %d len %d err %v", size, op, len(p), err)
		}
	}
	wsWrite(c, 8, []byte{0x03, 0xe8}, true)
	if op, _, err := wsRead(br); err != nil || op != 8 {
		t.Fatalf("close: op %d err %v", op, err)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the tunnel stayed open after the origin closed")
	}

	// The origin refuses the upgrade with 403: relayed as a response, no tunnel.
	_, _, resp = wsUpgrade(t, addr, "/refuse")
	if resp.StatusCode != 403 {
		t.Fatalf("refused upgrade: %d, want 403 relayed", resp.StatusCode)
	}

	// A certificate from another CA: the handshake fails, 502.
	other, _ := testcert.NewCA(t.TempDir())
	bad := testUpstream(t, []netip.AddrPort{oaddr}, func(o *UpstreamOptions) {
		o.TLS = clientTLS(t, tlsterm.ClientFiles{CA: other.CAFile, ServerName: "origin.gale.test"})
	})
	if _, _, resp := wsUpgrade(t, startProxy(t, bad, Route{}, nil), "/ws"); resp.StatusCode != 502 {
		t.Fatalf("untrusted origin certificate: %d, want 502", resp.StatusCode)
	}

	// Nothing listens: the connect is refused, 502.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := netip.MustParseAddrPort(l.Addr().String())
	l.Close()
	gone := testUpstream(t, []netip.AddrPort{closed}, func(o *UpstreamOptions) {
		o.TLS = clientTLS(t, tlsterm.ClientFiles{CA: ca.CAFile, ServerName: "origin.gale.test"})
	})
	if _, _, resp := wsUpgrade(t, startProxy(t, gone, Route{}, nil), "/ws"); resp.StatusCode != 502 {
		t.Fatalf("refused connect: %d, want 502", resp.StatusCode)
	}
}

// originTLS returns a test CA and the server configuration of an origin whose
// certificate it issued for origin.gale.test.
func originTLS(t *testing.T) (*testcert.CA, *tls.Config) {
	t.Helper()
	ca, _ := testcert.NewCA(t.TempDir())
	srv, _ := ca.Issue("origin", "origin.gale.test")
	cert, err := tls.LoadX509KeyPair(srv.Cert, srv.Key)
	if err != nil {
		t.Fatal(err)
	}
	return ca, &tls.Config{Certificates: []tls.Certificate{cert}}
}

// TestProxyTLSTunnelFullDuplex streams 16 MiB through a tunnel to an https://
// origin that echoes raw bytes with a blocking write per read (so it stops
// reading while its write waits) and reads the echo at the same time. The two
// directions must move on their own: when the engine stopped reading a side
// whose own output was above the high-water mark, the bytes queued for the
// origin stopped the tunnel reading its answers and both directions hung.
func TestProxyTLSTunnelFullDuplex(t *testing.T) {
	ca, cfg := originTLS(t)
	oaddr := testkit.Serve(t, func(raw *net.TCPConn) {
		c := tls.Server(raw, cfg)
		br := bufio.NewReader(c)
		head, err := readRequestHead(br, func([]byte) {})
		if err != nil {
			return
		}
		var key string
		for _, l := range strings.Split(head, "\r\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Key") {
				key = strings.TrimSpace(v)
			}
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
		buf := make([]byte, 64<<10)
		for { // one blocking write per read: no reading while it waits
			n, err := br.Read(buf)
			if n == 0 || err != nil {
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	})
	u := testUpstream(t, []netip.AddrPort{netip.MustParseAddrPort(oaddr)}, func(o *UpstreamOptions) {
		o.TLS = clientTLS(t, tlsterm.ClientFiles{CA: ca.CAFile, ServerName: "origin.gale.test"})
	})
	addr := startProxy(t, u, Route{}, nil)
	c, br, resp := wsUpgrade(t, addr, "/raw")
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade: %d", resp.StatusCode)
	}
	const size = 16 << 20
	c.SetDeadline(time.Now().Add(20 * time.Second))
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte(i * 13)
	}
	sent := make(chan error, 1)
	go func() {
		for n := 0; n < size; n += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	got := make([]byte, len(chunk))
	for n := 0; n < size; n += len(chunk) {
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("echo: %d of %d bytes back: %v", n, size, err)
		}
		if !bytes.Equal(got, chunk) {
			t.Fatalf("echo: bytes changed after %d", n)
		}
	}
	if err := <-sent; err != nil {
		t.Fatalf("write: %v", err)
	}
}

// TestProxyTunnelIdleTimeout: a tunnel that moves no byte for Route's
// TunnelIdleTimeout is closed on both sides, the copy through the loop of a tunnel
// to an https:// upstream as the relay of a plain one; bytes from the client keep
// it open meanwhile. Before, a tunnel with a TLS side had no idle timeout at all,
// so a peer that vanished without a FIN held it forever.
func TestProxyTunnelIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	ca, cfg := originTLS(t)
	for _, secure := range []bool{true, false} {
		t.Run(fmt.Sprintf("tls=%v", secure), func(t *testing.T) {
			closed := make(chan struct{}, 1)
			oaddr := testkit.Serve(t, func(raw *net.TCPConn) {
				var c net.Conn = raw
				if secure {
					c = tls.Server(raw, cfg)
				}
				br := bufio.NewReader(c)
				if _, err := readRequestHead(br, func([]byte) {}); err != nil {
					return
				}
				key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")) // wsUpgrade's
				fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				io.Copy(io.Discard, br) // silent: reads until the proxy closes
				closed <- struct{}{}
			})
			u := testUpstream(t, []netip.AddrPort{netip.MustParseAddrPort(oaddr)}, func(o *UpstreamOptions) {
				if secure {
					o.TLS = clientTLS(t, tlsterm.ClientFiles{CA: ca.CAFile, ServerName: "origin.gale.test"})
				}
			})
			addr := startProxy(t, u, Route{TunnelIdleTimeout: idle}, nil)
			c, br, resp := wsUpgrade(t, addr, "/ws")
			if resp.StatusCode != 101 {
				t.Fatalf("upgrade: %d", resp.StatusCode)
			}
			start := time.Now()
			for time.Since(start) < 3*idle { // activity from the client only
				if err := wsWrite(c, 1, []byte("tick"), true); err != nil {
					t.Fatalf("tunnel closed while the client wrote: %v", err)
				}
				time.Sleep(idle / 4)
			}
			quiet := time.Now()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("idle tunnel: %v, want it closed", err)
			}
			if d := time.Since(quiet); d < idle*3/4 {
				t.Fatalf("closed %v after the last byte, idle timeout %v", d, idle)
			}
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream side stayed open")
			}
		})
	}
}
