package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// TestOriginCloseWhileClientSlow: an origin that sends its whole response and
// closes (Connection: close, as HTTP/1.0 servers and Python's http.server do)
// behind a client that does not read yet. Reading from the origin is paused for the
// client, so its FIN arrives while the end of the body is still in the socket; the
// client must still get every byte (it got a cut body and the log said "unexpected
// EOF" when the epoll engine reported that FIN at once).
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
		c := dialSlowClient(t, addr)
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

// TestOriginCloseDelimitedSlowClient: an origin (a real socket) writes an 8 MiB body
// and closes, behind a client that reads slowly through a small receive buffer, so
// that the proxy is not reading the origin when the origin's FIN arrives. Every
// framing must arrive whole: close-delimited HTTP/1.1 and HTTP/1.0 responses (the
// FIN is the end of the body, and must only end it once every byte before it was
// relayed), a Content-Length one and a chunked one. The client compares SHA-256.
func TestOriginCloseDelimitedSlowClient(t *testing.T) {
	const size = 8 << 20
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i*7 + i>>13)
	}
	want := sha256.Sum256(body)
	for _, tc := range []struct {
		name    string
		head    string
		chunked bool
	}{
		{"close-delimited-1.1", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", false},
		{"close-delimited-1.0", "HTTP/1.0 200 OK\r\n\r\n", false},
		{"content-length", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", size), false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				bw := bufio.NewWriterSize(c, 64<<10)
				bw.WriteString(tc.head)
				if tc.chunked {
					for p := body; len(p) > 0; {
						n := min(len(p), 10000)
						fmt.Fprintf(bw, "%x\r\n", n)
						bw.Write(p[:n])
						bw.WriteString("\r\n")
						p = p[n:]
					}
					bw.WriteString("0\r\n\r\n")
				} else {
					bw.Write(body)
				}
				bw.Flush()
				// The origin closes at once: the FIN follows the last byte.
			})
			addr := startProxy(t, testUpstream(t, []netip.AddrPort{o.addr()}, nil), Route{}, nil)
			getSlowly(t, addr, 3, size, want)
		})
	}
}

// TestOriginCutShortWhileClientSlow: an origin that declares 8 MiB, sends half and
// closes, while the proxy is not reading it for a client that reads nothing yet.
// Once the client reads, it gets every byte the origin sent and then the cut, at
// once: the FIN is seen after those bytes, not left to timeouts.read.
func TestOriginCutShortWhileClientSlow(t *testing.T) {
	const size, sent = 8 << 20, 4 << 20
	body := make([]byte, sent)
	for i := range body {
		body[i] = byte(i * 13)
	}
	closed := make(chan struct{}, 4)
	o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		c.Write(body)
		c.Close()
		closed <- struct{}{}
	})
	const readTimeout = 20 * time.Second
	u := testUpstream(t, []netip.AddrPort{o.addr()}, func(o *UpstreamOptions) { o.Timeouts.Read = readTimeout })
	addr := startProxy(t, u, Route{}, nil)
	c := dialSlowClient(t, addr)
	defer c.Close()
	io.WriteString(c, "GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Log("the origin could not write its 4 MiB into the socket buffers yet")
	}
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != io.ErrUnexpectedEOF || !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes (the origin's %d equal: %v), %v; want them all, then unexpected EOF", len(got), sent, bytes.Equal(got, body), err)
	}
	if el := time.Since(start); el > readTimeout/2 {
		t.Fatalf("the cut reached the client after %v: the FIN waited for timeouts.read", el)
	}
}
