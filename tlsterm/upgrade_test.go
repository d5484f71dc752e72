package tlsterm

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/server"
	"github.com/gale-server/gale/server/nethttp"
)

// echoProto is an upgraded protocol that sends back every byte it gets, through
// the layer it was opened under.
type echoProto struct{ engine.NopHandler }

func (echoProto) OpenLayered(ec *engine.Conn, l server.Layer) { ec.SetContext(l) }

func (echoProto) OnData(ec *engine.Conn, in []byte) int {
	ec.Context().(server.Layer).Write(in)
	return len(in)
}

// OnEOF ends the echo: close_notify, then the socket closes after the output.
func (echoProto) OnEOF(ec *engine.Conn) {
	ec.Context().(server.Layer).CloseNotify()
	ec.CloseAfterFlush(false)
}

func (p echoProto) OnShutdown(ec *engine.Conn) { p.OnEOF(ec) }

// plainEcho writes to the engine connection: it cannot run under TLS.
type plainEcho struct{ engine.NopHandler }

// upgrader upgrades /echo to echoProto and /plain to plainEcho, reporting the
// latter's error in the response; /later upgrades from a posted closure, after
// ServeGale has returned.
var upgrader = server.HandlerFunc(func(c *server.Ctx) {
	if string(c.Request().Path) == "/later" {
		c.Detach()
		c.Post(func() { upgradeTo(c, echoProto{}) })
		return
	}
	var h engine.Handler = echoProto{}
	if string(c.Request().Path) == "/plain" {
		h = plainEcho{}
	}
	upgradeTo(c, h)
})

func upgradeTo(c *server.Ctx, h engine.Handler) {
	c.Header().Set("Upgrade", "echo")
	c.Header().Set("Connection", "Upgrade")
	if err := c.Upgrade(h); err != nil {
		msg := err.Error()
		if errors.Is(err, server.ErrLayered) {
			msg = "layered"
		}
		c.Error(500, msg)
	}
}

// dialTLS opens a TLS client connection to e with a deadline.
func (e *env) dialTLS(t *testing.T) *tls.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return conn
}

// echoed sends the upgrade request with early bytes right behind it, then more,
// and checks that the 101 and every byte come back decrypted in order.
func echoed(t *testing.T, conn *tls.Conn, req string) {
	t.Helper()
	early := []byte("early bytes in the request's record|")
	more := bytes.Repeat([]byte("after-the-upgrade "), 256<<10/18)
	if _, err := conn.Write(append([]byte(req), early...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %q, want 101", resp.StatusCode, b)
	}
	go conn.Write(more)
	want := append(early, more...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echoed bytes differ from the bytes sent")
	}
}

// TestUpgradeOverTLS: Ctx.Upgrade to a LayeredHandler hands the decrypted stream
// over (bytes sent with the request included) and its writes are encrypted.
func TestUpgradeOverTLS(t *testing.T) {
	e := startTLS(t, upgrader, nil)
	for _, path := range []string{"/echo", "/later"} {
		echoed(t, e.dialTLS(t), "GET "+path+" HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	}
}

// TestUpgradeOverTLSRefusesPlainHandler: a handler that would write to the socket
// unencrypted is refused with ErrLayered and the connection stays HTTP/1.
func TestUpgradeOverTLSRefusesPlainHandler(t *testing.T) {
	e := startTLS(t, upgrader, nil)
	conn := e.dialTLS(t)
	conn.Write([]byte("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 500 || !bytes.Contains(b, []byte("layered")) {
		t.Fatalf("status %d body %q, want 500 layered", resp.StatusCode, b)
	}
}

// TestHijackOverTLS: a net/http handler behind the adapter hijacks a TLS
// connection, reads the bytes after the request, writes its own response and
// echoes; it sees the connection's TLS state in r.TLS.
func TestHijackOverTLS(t *testing.T) {
	pool := server.NewPool(4, 16)
	t.Cleanup(pool.Close)
	h := nethttp.Adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || r.TLS.ServerName != "localhost" {
			http.Error(w, "no TLS state", 500)
			return
		}
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 32<<10)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				if _, werr := conn.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}), pool)
	e := startTLS(t, h, nil)
	echoed(t, e.dialTLS(t), "GET /hijack HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
}

// TestNetHTTPRequestTLSOnBothProtocols: a net/http handler behind the adapter
// sees the connection's TLS state in r.TLS over HTTP/2 as over HTTP/1.1, as with
// net/http's own server (handlers tell https from http by it), with the ALPN
// protocol the client negotiated.
func TestNetHTTPRequestTLSOnBothProtocols(t *testing.T) {
	pool := server.NewPool(4, 16)
	t.Cleanup(pool.Close)
	h := nethttp.Adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			io.WriteString(w, r.Proto+" no TLS state")
			return
		}
		io.WriteString(w, r.Proto+" "+r.TLS.ServerName+" "+r.TLS.NegotiatedProtocol)
	}), pool)
	e := startTLS(t, h, func(s *server.Server, o *Options) { o.H2 = s.NewHTTP2(server.HTTP2Options{}) })
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"}, ForceAttemptHTTP2: h2}
		t.Cleanup(tr.CloseIdleConnections)
		want := "HTTP/1.1 localhost "
		if h2 {
			want = "HTTP/2.0 localhost h2"
		}
		if got := get(t, &http.Client{Transport: tr, Timeout: 20 * time.Second}, "https://"+e.addr+"/"); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
