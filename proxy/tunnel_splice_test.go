package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/servertest"
)

// TestProxyTunnelBulkHalfClose pushes 16 MiB each way through a plain
// upgraded tunnel (an origin that echoes raw bytes after its 101) and then
// half-closes it: every byte comes back in order (SHA-256), the client's FIN
// reaches the origin while the other direction stays open until the origin
// has sent the rest, and a direction that moved more than the threshold is
// spliced rather than copied (on the epoll engine).
func TestProxyTunnelBulkHalfClose(t *testing.T) {
	o := newRawOrigin(t, func(c net.Conn, br *bufio.Reader, log func([]byte)) {
		if _, err := readRequestHead(br, log); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		n, err := io.Copy(c, br) // until the client's FIN
		log(fmt.Appendf(nil, "echoed %d %v", n, err))
		io.WriteString(c, "bye") // after the FIN: the client must still get it
		c.(*net.TCPConn).CloseWrite()
	})
	u := testUpstream(t, []netip.AddrPort{o.addr()}, nil)
	h := New(u, Route{})
	addr := servertest.Start(t, h, func(o *server.Options) { o.Workers = 2 }).Addr()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(c, "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	const size = 16 << 20
	sent := sha256.New()
	werr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for n := 0; n < size; n += len(buf) {
			rand.Read(buf)
			sent.Write(buf)
			if _, err := c.Write(buf); err != nil {
				werr <- err
				return
			}
		}
		werr <- c.(*net.TCPConn).CloseWrite()
	}()
	got := sha256.New()
	n, err := io.Copy(got, io.LimitReader(br, size))
	if err != nil || n != size {
		t.Fatalf("read back %d of %d bytes: %v", n, size, err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatal("the bytes came back changed")
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after the half-close: %q %v, want the origin's last bytes and its FIN", rest, err)
	}
	st := h.TunnelStats()
	t.Logf("tunnel: %+v", st)
	if st.Accepted != 1 || st.Copied+st.Spliced != 2*size+3 {
		t.Errorf("tunnel stats %+v: want 1 pair and %d bytes relayed", st, 2*size+3)
	}
	if expectSplice && st.Spliced == 0 {
		t.Errorf("nothing was spliced: %+v", st)
	}
}
