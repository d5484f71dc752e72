package tlsterm

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/server"
)

// echoOrigin is a crypto/tls server on 127.0.0.1 that echoes lines, counting
// resumed sessions.
func echoOrigin(t *testing.T, cert testcert.Files, resumed *atomic.Int32) netip.AddrPort {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(cert.Cert, cert.Key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				tc := c.(*tls.Conn)
				if tc.Handshake() != nil {
					return
				}
				if tc.ConnectionState().DidResume {
					resumed.Add(1)
				}
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadBytes('\n')
					if err != nil {
						return
					}
					c.Write(line)
				}
			}()
		}
	}()
	return netip.MustParseAddrPort(l.Addr().String())
}

// lineClient collects what a Dialer's connection receives; ends with OnClose.
type lineClient struct {
	engine.NopHandler
	opened bool
	got    []byte
	lines  chan string
	closed chan error
}

func (h *lineClient) OnOpen(*engine.Conn) { h.opened = true }

func (h *lineClient) OnData(_ *engine.Conn, in []byte) int {
	h.got = append(h.got, in...)
	for i, b := range h.got {
		if b == '\n' {
			h.lines <- string(h.got[:i+1])
			h.got = h.got[i+1:]
			break
		}
	}
	return len(in)
}

func (h *lineClient) OnEOF(ec *engine.Conn) { ec.Close(nil) }

func (h *lineClient) OnClose(_ *engine.Conn, err error) { h.closed <- err }

// dialOnLoop dials addr from the first loop of s and writes msg at once (before
// the handshake completes).
func dialOnLoop(t *testing.T, s *server.Server, d *Dialer, addr netip.AddrPort, msg string) (*lineClient, chan server.Layer) {
	h := &lineClient{lines: make(chan string, 4), closed: make(chan error, 1)}
	layers := make(chan server.Layer, 1)
	l := s.Engine().Loops()[0]
	l.Post(func() {
		_, layer, err := d.Dial(l, addr, 5*time.Second, h)
		if err != nil {
			h.closed <- err
			return
		}
		if msg != "" {
			layer.Write([]byte(msg))
		}
		layers <- layer
	})
	return h, layers
}

func newEngine(t *testing.T) *server.Server {
	s, err := server.New(server.Options{Handler: hello, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

// TestDialer: a Dialer's connection verifies the origin's certificate by its IP
// address, sends what was written before the handshake completed, receives
// the echo on the loop, resumes its session on the next connection, and a
// certificate from another CA fails as a DialError before the handler opens.
func TestDialer(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.NewCA(dir)
	cert, _ := ca.Issue("origin", "127.0.0.1")
	var resumed atomic.Int32
	addr := echoOrigin(t, cert, &resumed)
	s := newEngine(t)
	d, err := NewDialer(DialOptions{Loops: len(s.Engine().Loops()), Config: &tls.Config{RootCAs: ca.Pool()}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		h, layers := dialOnLoop(t, s, d, addr, "ping\n")
		select {
		case line := <-h.lines:
			if line != "ping\n" {
				t.Fatalf("echo %q", line)
			}
		case err := <-h.closed:
			t.Fatalf("connection %d closed: %v", i, err)
		case <-time.After(20 * time.Second):
			t.Fatal("no echo")
		}
		layer := <-layers
		l := s.Engine().Loops()[0]
		l.Post(func() {
			layer.Write([]byte("second\n")) // an open connection writes through at once
		})
		if line := <-h.lines; line != "second\n" {
			t.Fatalf("echo %q", line)
		}
		l.Post(func() { layer.CloseNotify() })
		<-h.closed
	}
	if resumed.Load() != 1 {
		t.Fatalf("%d resumed sessions of 2 connections, want 1", resumed.Load())
	}
	if st := d.Stats(); st.Handshakes != 2 {
		t.Fatalf("stats %+v", st)
	}

	other, _ := testcert.NewCA(t.TempDir())
	bad, _ := NewDialer(DialOptions{Loops: len(s.Engine().Loops()), Config: &tls.Config{RootCAs: other.Pool()}})
	h, _ := dialOnLoop(t, s, bad, addr, "ping\n")
	select {
	case err := <-h.closed:
		var de *engine.DialError
		var ve *tls.CertificateVerificationError
		if !errors.As(err, &de) || !errors.As(err, &ve) {
			t.Fatalf("bad certificate: close reason %v (%T), want a DialError with a verification error", err, err)
		}
		if h.opened {
			t.Fatal("the handler opened on a failed handshake")
		}
	case <-h.lines:
		t.Fatal("data through an unverified connection")
	case <-time.After(20 * time.Second):
		t.Fatal("no close")
	}
}

// TestDialerStalledHandshake: an origin that accepts and never answers the
// ClientHello fails the connection after the handshake timeout.
func TestDialerStalledHandshake(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s := newEngine(t)
	d, _ := NewDialer(DialOptions{Loops: len(s.Engine().Loops()), Config: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 200 * time.Millisecond})
	h, _ := dialOnLoop(t, s, d, netip.MustParseAddrPort(l.Addr().String()), "")
	select {
	case err := <-h.closed:
		if !errors.Is(err, ErrHandshakeTimeout) {
			t.Fatalf("close reason %v, want ErrHandshakeTimeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled handshake did not time out")
	}
}

// TestDialerAlertBeforeFIN: an origin that supports none of the offered ALPN
// protocols sends its no_application_protocol alert and closes at once; the
// connection fails with that alert in its DialError, not with a bare close
// (the alert and the FIN arrive together and the FIN used to win).
func TestDialerAlertBeforeFIN(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testcert.NewCA(dir)
	cert, _ := ca.Issue("origin", "127.0.0.1")
	kp, _ := tls.LoadX509KeyPair(cert.Cert, cert.Key)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp}, NextProtos: []string{"spdy/3"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	s := newEngine(t)
	d, _ := NewDialer(DialOptions{Loops: len(s.Engine().Loops()), Config: &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}}})
	for i := range 5 {
		h, _ := dialOnLoop(t, s, d, netip.MustParseAddrPort(l.Addr().String()), "ping\n")
		select {
		case err := <-h.closed:
			var de *engine.DialError
			if !errors.As(err, &de) || err == nil || !strings.Contains(err.Error(), "no application protocol") {
				t.Fatalf("connection %d: close reason %v, want a DialError naming the no_application_protocol alert", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no close")
		}
	}
}
