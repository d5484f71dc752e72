//go:build unix

package engine

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testkit"
)

// relay serves clients by dialing an origin on the client's loop and copying bytes
// both ways: the way a proxy uses Loop.Dial. Each side's context is the other side.
type relay struct {
	NopHandler
	origin     netip.AddrPort
	up         upstream
	upOpened   atomic.Int64
	upPeerOK   atomic.Bool
	clientDone atomic.Int64
}

// upstream is the handler of the origin connections (one value for all of them).
type upstream struct {
	NopHandler
	r *relay
}

func (r *relay) OnOpen(c *Conn) {
	up, err := c.Loop().Dial(r.origin, 5*time.Second, &r.up)
	if err != nil {
		c.Close(err)
		return
	}
	up.SetContext(c)
	c.SetContext(up)
}

func (r *relay) OnData(c *Conn, in []byte) int {
	c.Context().(*Conn).Write(in) // queued while the origin is still connecting
	return len(in)
}

func (r *relay) OnEOF(c *Conn) { c.Close(nil) }

func (r *relay) OnShutdown(c *Conn) { c.Close(nil) }

func (r *relay) OnClose(c *Conn, _ error) {
	r.clientDone.Add(1)
	if up, ok := c.Context().(*Conn); ok {
		up.Close(nil)
	}
}

func (u *upstream) OnOpen(c *Conn) {
	u.r.upOpened.Add(1)
	u.r.upPeerOK.Store(c.RemoteAddr() == u.r.origin)
}

func (u *upstream) OnData(c *Conn, in []byte) int {
	c.Context().(*Conn).Write(in)
	return len(in)
}

func (u *upstream) OnClose(c *Conn, _ error) { c.Context().(*Conn).CloseAfterFlush(true) }

// echoOrigin is a plain Go echo server standing for an origin.
func echoOrigin(t *testing.T) netip.AddrPort {
	t.Helper()
	addr := testkit.Serve(t, func(c *net.TCPConn) { io.Copy(c, c) })
	return netip.MustParseAddrPort(addr)
}

// TestDialRelay relays bytes between accepted clients and origin connections the
// loop dialed, then checks both sides closed.
func TestDialRelay(t *testing.T) {
	r := &relay{origin: echoOrigin(t)}
	r.up.r = r
	e, addr := startEngine(t, r, 2)
	const clients = 4
	for i := 0; i < clients; i++ {
		c := testkit.Dial(t, addr)
		if i == 0 {
			// The dialed origin connection is not a client: Stats count only the
			// accepted one.
			testkit.WaitFor(t, "the origin connection", func() bool { return r.upOpened.Load() == 1 })
			if st := e.Stats(); st.Active != 1 || st.Accepted != 1 {
				t.Fatalf("one client relayed: Stats %+v, want Active 1, Accepted 1", st)
			}
		}
		msg := make([]byte, 256<<10)
		rand.Read(msg)
		go c.Write(msg)
		got := make([]byte, len(msg))
		_, err := io.ReadFull(c, got)
		c.Close()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("client %d: got %d bytes back (equal %v), %v", i, len(got), bytes.Equal(got, msg), err)
		}
	}
	testkit.WaitFor(t, "clients closed", func() bool { return r.clientDone.Load() == clients })
	testkit.WaitFor(t, "every connection closed", func() bool { return e.Stats().Active == 0 })
	if st := e.Stats(); st.Closed != clients || st.Accepted != clients {
		t.Fatalf("Stats %+v after %d relays: want Accepted and Closed %d (origin connections not counted)", st, clients, clients)
	}
	if r.upOpened.Load() != clients || !r.upPeerOK.Load() {
		t.Fatalf("upstream opens %d, RemoteAddr is the origin: %v", r.upOpened.Load(), r.upPeerOK.Load())
	}
}

// dialProbe records how one dial ended.
type dialProbe struct {
	NopHandler
	opened atomic.Int64
	closed atomic.Int64
	err    atomic.Pointer[error]
}

func (p *dialProbe) OnOpen(*Conn) { p.opened.Add(1) }

func (p *dialProbe) OnClose(_ *Conn, err error) {
	p.err.Store(&err)
	p.closed.Add(1)
}

// dialOnLoop dials addr on l and returns the error the attempt ended with, from
// Dial itself or from OnClose.
func dialOnLoop(t *testing.T, l *Loop, addr netip.AddrPort, timeout time.Duration) error {
	t.Helper()
	p := &dialProbe{}
	var direct error
	onLoop(t, l, func() { _, direct = l.Dial(addr, timeout, p) })
	if direct != nil {
		return direct
	}
	testkit.WaitFor(t, "dial result", func() bool { return p.closed.Load() == 1 })
	if p.opened.Load() != 0 {
		t.Fatal("OnOpen called for a failed dial")
	}
	return *p.err.Load()
}

// TestDialRefused: a closed port fails with a *DialError wrapping ECONNREFUSED.
func TestDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	e, _ := startEngine(t, &echo{}, 1)
	err = dialOnLoop(t, e.Loops()[0], addr, 5*time.Second)
	var de *DialError
	if !errors.As(err, &de) || !errors.Is(err, syscall.ECONNREFUSED) || de.Timeout() || de.Addr != addr {
		t.Fatalf("dial error %v (%T)", err, err)
	}
	// Every engine words it the same: the address once, then the system call
	// and its error (the portable engine's named the address twice, inside
	// net's own "dial tcp ADDR:" prefix, which logs that match on the
	// system call's words missed).
	if want := "engine: dial " + addr.String() + ": connect: connection refused"; err.Error() != want {
		t.Errorf("dial error %q; want %q", err, want)
	}
}

// TestDialTimeout dials a listener whose accept queue is full, so the kernel drops
// the SYN: the connect timeout ends the attempt with a timeout *DialError.
func TestDialTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := netip.AddrPortFrom(netip.AddrFrom4(sa.(*syscall.SockaddrInet4).Addr), uint16(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue until a connect no longer completes.
	full := false
	for i := 0; i < 16 && !full; i++ {
		c, err := net.DialTimeout("tcp", addr.String(), 300*time.Millisecond)
		if err != nil {
			full = true
			break
		}
		defer c.Close()
	}
	if !full {
		t.Skip("the kernel kept accepting into a backlog-0 queue")
	}
	e, _ := startEngine(t, &echo{}, 1)
	err = dialOnLoop(t, e.Loops()[0], addr, 200*time.Millisecond)
	var de *DialError
	if !errors.As(err, &de) || !de.Timeout() || !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("dial error %v (%T)", err, err)
	}
}
