package server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gale-server/gale/engine"
	"github.com/gale-server/gale/internal/testkit"
)

// upperEcho is a stand-in for WebSocket or a tunnel: it answers every byte with its
// upper-case form, so the test sees which handler read which bytes.
type upperEcho struct {
	opened atomic.Int32
	closed chan struct{}
}

func (u *upperEcho) OnOpen(c *engine.Conn) { u.opened.Add(1); c.SetContext(u) }
func (u *upperEcho) OnData(c *engine.Conn, in []byte) int {
	if c.Context() != u {
		panic("upperEcho got a connection it did not open")
	}
	c.Write(bytes.ToUpper(in))
	return len(in)
}
func (u *upperEcho) OnEOF(c *engine.Conn)              { c.CloseAfterFlush(true) }
func (u *upperEcho) OnDrain(c *engine.Conn)            {}
func (u *upperEcho) OnTimeout(c *engine.Conn)          { c.Close(nil) }
func (u *upperEcho) OnShutdown(c *engine.Conn)         { c.Close(nil) }
func (u *upperEcho) OnClose(c *engine.Conn, err error) { close(u.closed) }

const upgradeReq = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"

// switching is the 101 head upgradeHandler sends, with the Date line cut out
// (readSwitching checks it).
const switching = "HTTP/1.1 101 Switching Protocols\r\nServer: gale\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"

// readSwitching reads a 101 head from br and checks it is switching once its Date
// line, which every response of the server carries, is taken out.
func readSwitching(t *testing.T, br *bufio.Reader) {
	t.Helper()
	var head strings.Builder
	date := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("101 head %q: %v", head.String(), err)
		}
		if v, ok := strings.CutPrefix(line, "Date: "); ok {
			if _, err := http.ParseTime(strings.TrimSuffix(v, "\r\n")); err != nil {
				t.Fatalf("Date line %q: %v", line, err)
			}
			date++
			continue
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	if head.String() != switching || date != 1 {
		t.Fatalf("101 head %q with %d Date lines; want %q and one", head.String(), date, switching)
	}
}

// upgradeHandler upgrades /ws to h (from a goroutine through Post when async) and
// answers anything else normally.
func upgradeHandler(t *testing.T, h engine.Handler, async bool, errs chan<- error) Handler {
	return HandlerFunc(func(c *Ctx) {
		if string(c.Path()) != "/ws" {
			c.Respond(200, "text/plain", []byte("plain"))
			return
		}
		up := func() {
			c.Header().Set("Upgrade", "echo")
			c.Header().Set("Connection", "Upgrade")
			errs <- c.Upgrade(h)
		}
		if !async {
			up()
			return
		}
		c.Detach()
		go c.Post(up)
	})
}

// TestUpgradeReparentsMidStream sends a request, then (in the same segment) bytes
// of the next protocol, then more bytes later, byte by byte: the 101 comes first,
// then every byte after the head is echoed by the new handler, none lost and none
// parsed as HTTP.
func TestUpgradeReparentsMidStream(t *testing.T) {
	for _, async := range []bool{false, true} {
		name := "inline"
		if async {
			name = "posted"
		}
		t.Run(name, func(t *testing.T) {
			echo := &upperEcho{closed: make(chan struct{})}
			errs := make(chan error, 1)
			s := startServer(t, upgradeHandler(t, echo, async, errs), nil)
			c := testkit.Dial(t, s.Addr())
			// A plain request first: the connection is HTTP until the upgrade.
			io.WriteString(c, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"+upgradeReq+"early bytes GET / HTTP/1.1\r\n\r\n")
			br := bufio.NewReader(c)
			if resp := testkit.ReadResponse(t, br, "GET"); testkit.Body(t, resp) != "plain" {
				t.Fatal("plain request not served")
			}
			if err := <-errs; err != nil {
				t.Fatalf("Upgrade: %v", err)
			}
			readSwitching(t, br)
			want := "EARLY BYTES GET / HTTP/1.1\r\n\r\n"
			got := make([]byte, len(want))
			if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
				t.Fatalf("echo of pipelined bytes %q, %v; want %q", got, err, want)
			}
			for _, b := range []byte("later") {
				c.Write([]byte{b})
				one, err := br.ReadByte()
				if err != nil || one != b-'a'+'A' {
					t.Fatalf("echo of %q: %q, %v", b, one, err)
				}
			}
			if n := echo.opened.Load(); n != 1 {
				t.Fatalf("OnOpen ran %d times", n)
			}
			c.Close()
			<-echo.closed
		})
	}
}

// TestUpgradeRefusedDuringBody: bytes after an unfinished body are ambiguous, so
// Upgrade refuses and the exchange stays usable.
func TestUpgradeRefusedDuringBody(t *testing.T) {
	echo := &upperEcho{closed: make(chan struct{})}
	got := make(chan error, 1)
	s := startServer(t, HandlerFunc(func(c *Ctx) {
		got <- c.Upgrade(echo)
		c.ReadBody(func(b []byte) { c.Respond(200, "text/plain", b) })
	}), nil)
	c := testkit.Dial(t, s.Addr())
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
	if err := <-got; !errors.Is(err, ErrUpgradeBody) {
		t.Fatalf("Upgrade during body: %v, want ErrUpgradeBody", err)
	}
	io.WriteString(c, "abcde")
	if resp := testkit.ReadResponse(t, bufio.NewReader(c), "POST"); testkit.Body(t, resp) != "abcde" {
		t.Fatal("exchange unusable after a refused Upgrade")
	}
	if echo.opened.Load() != 0 {
		t.Fatal("refused Upgrade still re-parented the connection")
	}
}
