package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// TestOriginCloseWhileClientSlow: an origin that sends its whole response and
// closes (Connection: close, as HTTP/1.0 servers and Python's http.server do)
// behind a client that does not read yet. Reading from the origin is paused for the
// client, so its FIN arrives (and the epoll engine reports it) while the end of the
// body is still in the socket; the client must still get every byte (it got a cut
// body and the log said "unexpected EOF").
func TestOriginCloseWhileClientSlow(t *testing.T) {
	const size = 4 << 20
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i * 7)
	}
	sent := make(chan struct{}, 4)
	o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", size)
		c.Write(body)
		c.(*net.TCPConn).CloseWrite() // the FIN follows the body
		sent <- struct{}{}
		io.Copy(io.Discard, c)
	})
	addr := startProxy(t, testUpstream(t, []netip.AddrPort{o.addr()}, nil), Route{}, nil)
	for round := range 3 {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				// A small receive buffer, so that the proxy's queue for the client fills
				// and it stops reading from the origin.
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10)
			})
		}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
		select {
		case <-sent: // the origin wrote everything and half-closed
		case <-time.After(3 * time.Second):
			t.Logf("round %d: the origin could not write the whole body into the socket buffers", round)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		c.Close()
		if err != nil || len(got) != size || string(got) != string(body) {
			t.Fatalf("round %d: read %d of %d bytes (equal %v), %v", round, len(got), size, string(got) == string(body), err)
		}
	}
}
