package tlsterm

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testcert"
	"github.com/gale-server/gale/server"
)

// versions are the TLS versions every stall test runs with.
var versions = []struct {
	name string
	v    uint16
}{{"TLS1.2", tls.VersionTLS12}, {"TLS1.3", tls.VersionTLS13}}

// coalescer is a net.Conn whose writes are held until flush, so that several
// TLS records leave in one TCP write and arrive in one engine read.
type coalescer struct {
	net.Conn
	buf        bytes.Buffer
	hold       bool
	afterFirst bool // hold from the second write on
}

func (c *coalescer) Write(p []byte) (int, error) {
	if c.afterFirst {
		c.afterFirst = false
		c.hold = true
		return c.Conn.Write(p)
	}
	if c.hold {
		return c.buf.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *coalescer) flush() error {
	c.hold = false
	_, err := c.Conn.Write(c.buf.Bytes())
	c.buf.Reset()
	return err
}

// pausingClient takes one record's plaintext at a time: after each OnData it
// pauses reading and posts a resume through the Layer, as the proxy does when
// its client's output drains.
type pausingClient struct {
	engine.NopHandler
	layer server.Layer
	got   []byte
	done  chan []byte
	want  int
	// engine resumes the engine connection instead of the layer (as a handler
	// that keeps only the *engine.Conn does).
	engine bool
}

func (h *pausingClient) OnData(ec *engine.Conn, in []byte) int {
	h.got = append(h.got, in...)
	if len(h.got) >= h.want {
		h.done <- h.got
		ec.Close(nil)
		return len(in)
	}
	ec.PauseRead()
	ec.Loop().Post(func() {
		if h.engine {
			ec.ResumeRead()
		} else {
			h.layer.ResumeRead()
		}
	})
	return len(in)
}

// TestDialerResumeDeliversBufferedRecords: records that crypto/tls took in the
// same engine read as the one the handler paused after are delivered when the
// handler resumes, with no further bytes from the socket (the origin sends
// nothing more and keeps the connection open). Before the fix they waited
// inside crypto/tls until the read timeout. TLS 1.2 and 1.3, resumed through
// the layer and through the engine connection.
func TestDialerResumeDeliversBufferedRecords(t *testing.T) {
	for _, ver := range versions {
		for _, viaEngine := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/engine=%v", ver.name, viaEngine), func(t *testing.T) { dialerResume(t, ver.v, viaEngine) })
		}
	}
}

// recordOrigin accepts one TLS connection (version only, a certificate for
// 127.0.0.1 from a new test CA) and, after the handshake, writes 8 lines of one
// record each in one TCP write, then runs after with the raw connection, which
// it closes when after returns. It returns the address, the CA and the lines.
func recordOrigin(t *testing.T, version uint16, after func(raw net.Conn)) (netip.AddrPort, *testcert.CA, []byte) {
	t.Helper()
	ca, _ := testcert.NewCA(t.TempDir())
	cert, _ := ca.Issue("origin", "127.0.0.1")
	kp, err := tls.LoadX509KeyPair(cert.Cert, cert.Key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	const records = 8
	var want []byte
	for i := range records {
		want = append(want, fmt.Sprintf("record %d of %d\n", i, records)...)
	}
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		defer raw.Close()
		co := &coalescer{Conn: raw}
		tc := tls.Server(co, &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: version, MaxVersion: version})
		if tc.Handshake() != nil {
			return
		}
		co.hold = true
		for i := range records {
			tc.Write([]byte(fmt.Sprintf("record %d of %d\n", i, records))) // one record each
		}
		co.flush()
		after(raw)
	}()
	return netip.MustParseAddrPort(ln.Addr().String()), ca, want
}

func dialerResume(t *testing.T, version uint16, viaEngine bool) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	addr, ca, want := recordOrigin(t, version, func(net.Conn) {
		<-release // nothing more: the connection stays open and silent
	})
	s := newEngine(t)
	d, err := NewDialer(DialOptions{Loops: len(s.Engine().Loops()), Config: &tls.Config{RootCAs: ca.Pool()}})
	if err != nil {
		t.Fatal(err)
	}
	h := &pausingClient{done: make(chan []byte, 1), want: len(want), engine: viaEngine}
	l := s.Engine().Loops()[0]
	l.Post(func() {
		_, layer, err := d.Dial(l, addr, 5*time.Second, h)
		if err != nil {
			t.Error(err)
			return
		}
		h.layer = layer
	})
	select {
	case got := <-h.done:
		if !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		var n int
		done := make(chan struct{})
		l.Post(func() { n = len(h.got); close(done) })
		<-done
		t.Fatalf("%d of %d bytes delivered: the records after the first pause stayed inside crypto/tls", n, len(want))
	}
}
